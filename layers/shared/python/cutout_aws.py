"""The one module that talks to AWS: the job table, the bucket and the inference queue.

Everything here is I/O; the rules it applies (which transition is allowed, which key a job
owns) come from the ``cutout`` domain package.
"""

import functools
import json
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cutout.jobs import HANDED_OVER_AT, JobStatus, check_transition, iso, is_live
from cutout.settings import Settings


class ObjectMissing(Exception):
    pass


class ObjectReplaced(Exception):
    """The key holds other bytes than the ones asked for (another PUT replaced them)."""


class ObjectTooLarge(Exception):
    def __init__(self, size: int):
        super().__init__(f"object is {size} bytes")
        self.size = size


def _plain(value):
    """DynamoDB returns every number as Decimal; job items only hold integers."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class JobRepository:
    def __init__(self, table_name: str, dynamodb_resource=None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    def create(self, item: dict) -> None:
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")

    def get(self, job_id: str, now: float) -> dict | None:
        item = self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        return _plain(item) if is_live(item, now) else None

    def transition(
        self,
        job_id: str,
        expected: JobStatus | Iterable[JobStatus],
        target: JobStatus,
        now: float,
        *,
        pinned: Mapping[str, str] | None = None,
        absent: Iterable[str] = (),
        **fields,
    ) -> dict | None:
        """Move a live job from an expected state to target, setting fields; None if it was not there.

        The condition makes the write atomic: of two concurrent deliveries only one moves the job.
        A pinned field is set too, and must be unset or hold that value already: once set, it never
        changes. The job must not have the attributes named in absent.
        """
        pinned = pinned or {}
        expected = [expected] if isinstance(expected, JobStatus) else list(expected)
        for current in expected:
            check_transition(current, target)
        names = {"#status": "status", "#target": target.value}
        values = {":target": target.value, ":ts": iso(now), ":now": int(now)}
        assignments = ["#status = :target", "updated_at = :ts", "stages.#target = :ts"]
        expected_refs = []
        for index, status in enumerate(expected):
            values[f":e{index}"] = status.value
            expected_refs.append(f":e{index}")
        conditions = [f"#status IN ({', '.join(expected_refs)})", "expires_at > :now"]
        for index, (name, value) in enumerate({**fields, **pinned}.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = value
            assignments.append(f"#f{index} = :f{index}")
            if name in pinned:
                conditions.append(f"(attribute_not_exists(#f{index}) OR #f{index} = :f{index})")
        for index, name in enumerate(absent):
            names[f"#a{index}"] = name
            conditions.append(f"attribute_not_exists(#a{index})")
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        return _plain(response["Attributes"])


    def mark_handed_over(self, job_id: str, now: float) -> bool:
        """Record, once, that a queued job's message was sent; False if it already was or the job
        moved on. It is no transition: the job stays queued and updated_at keeps its meaning."""
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #handed_over = :ts",
                ConditionExpression="#status = :queued AND attribute_not_exists(#handed_over)",
                ExpressionAttributeNames={"#status": "status", "#handed_over": HANDED_OVER_AT},
                ExpressionAttributeValues={":ts": iso(now), ":queued": JobStatus.QUEUED.value},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True


class ObjectStore:
    def __init__(self, bucket_name: str, s3_client=None):
        self.bucket_name = bucket_name
        self._s3 = s3_client or boto3.client(
            "s3",
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": os.environ.get("S3_ADDRESSING_STYLE", "virtual")},
            ),
        )

    def presign_upload(self, key: str, content_type: str, content_length: int, expires_in: int) -> str:
        """A PUT URL that signs Content-Type and Content-Length: S3 refuses any other bytes."""
        return self._s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket_name, "Key": key, "ContentType": content_type, "ContentLength": content_length},
            ExpiresIn=expires_in,
        )

    def presign_download(self, key: str, expires_in: int, filename: str) -> str:
        return self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket_name,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in,
        )

    def etag(self, key: str) -> str:
        """The object's ETag, unquoted as S3 event notifications carry it."""
        try:
            return self._s3.head_object(Bucket=self.bucket_name, Key=key)["ETag"].strip('"')
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(key) from error
            raise

    def read(self, key: str, max_bytes: int, etag: str | None = None) -> bytes:
        """The object's bytes, only if its ETag is etag when one is given (ObjectReplaced
        otherwise); ObjectTooLarge rather than reading more than max_bytes."""
        conditions = {"IfMatch": f'"{etag}"'} if etag is not None else {}
        try:
            response = self._s3.get_object(Bucket=self.bucket_name, Key=key, **conditions)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("NoSuchKey", "404"):
                raise ObjectMissing(key) from error
            if code in ("PreconditionFailed", "412"):
                raise ObjectReplaced(key) from error
            raise
        if response["ContentLength"] > max_bytes:
            response["Body"].close()
            raise ObjectTooLarge(response["ContentLength"])
        return response["Body"].read()

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket_name, Key=key, Body=data, ContentType=content_type)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket_name, Key=key)


class JobQueue:
    def __init__(self, queue_url: str, sqs_client=None):
        self.queue_url = queue_url
        self._sqs = sqs_client or boto3.client("sqs")

    def send(self, job_id: str) -> None:
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"job_id": job_id}))


# One of each per Lambda container, made on first use and reused by every invocation: creating
# clients costs more than most requests. Tests clear these caches between moto sessions.
@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def job_repository() -> JobRepository:
    return JobRepository(settings().table_name)


@functools.cache
def object_store() -> ObjectStore:
    return ObjectStore(settings().bucket_name)


@functools.cache
def job_queue() -> JobQueue:
    return JobQueue(settings().queue_url)


SERVICES = (settings, job_repository, object_store, job_queue)
