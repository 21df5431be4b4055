"""The one module that talks to AWS: the job table, the bucket and the inference queue.

Everything here is I/O; the rules it applies (which transition is allowed, which key a job
owns) come from the ``cutout`` domain package.
"""

import functools
import json
import os
from collections.abc import Iterable
from decimal import Decimal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cutout.jobs import JobStatus, check_transition, iso, is_live
from cutout.settings import Settings


class ObjectMissing(Exception):
    pass


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
        **fields,
    ) -> dict | None:
        """Move a live job from an expected state to target, setting fields; None if it was not there.

        The condition makes the write atomic: of two concurrent deliveries only one moves the job.
        """
        expected = [expected] if isinstance(expected, JobStatus) else list(expected)
        for current in expected:
            check_transition(current, target)
        names = {"#status": "status", "#target": target.value}
        values = {":target": target.value, ":ts": iso(now), ":now": int(now)}
        assignments = ["#status = :target", "updated_at = :ts", "stages.#target = :ts"]
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = value
            assignments.append(f"#f{index} = :f{index}")
        expected_refs = []
        for index, status in enumerate(expected):
            values[f":e{index}"] = status.value
            expected_refs.append(f":e{index}")
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=f"#status IN ({', '.join(expected_refs)}) AND expires_at > :now",
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
                UpdateExpression="SET handed_over_at = :ts",
                ConditionExpression="#status = :queued AND attribute_not_exists(handed_over_at)",
                ExpressionAttributeNames={"#status": "status"},
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

    def size(self, key: str) -> int:
        try:
            return self._s3.head_object(Bucket=self.bucket_name, Key=key)["ContentLength"]
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(key) from error
            raise

    def read(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes; ObjectTooLarge rather than reading more than max_bytes."""
        try:
            response = self._s3.get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise ObjectMissing(key) from error
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
