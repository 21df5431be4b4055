"""The one module that talks to AWS: the job table, the bucket and the inference queue.

Everything here is I/O; the rules it applies (which transition is allowed, which key a job
owns) come from the ``cutout`` domain package.
"""

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum

import boto3
from boto3.dynamodb.conditions import Key
from botocore.config import Config
from botocore.exceptions import ClientError

from cutout.batches import BATCH_PARTITION_KEY, Batch
from cutout.clients import OWNER_ATTRIBUTE, OWNER_INDEX, OWNER_INDEX_SORT_KEY
from cutout.errors import ErrorDetail
from cutout.idempotency import IDEMPOTENCY_PARTITION_KEY, IDEMPOTENCY_TTL_ATTRIBUTE
from cutout.jobs import (
    JOB_FIELDS,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    Job,
    JobStatus,
    ResultFile,
    check_transition,
    is_live,
    iso,
    overdue_move,
)
from cutout.keys import job_message
from cutout.models import MODEL_BEFORE_CHOICE
from cutout.output import OutputFormat, OutputOptions, SubjectBox
from cutout.settings import Settings
from cutout.stats import (
    BUCKET_RETENTION_S,
    DAY_S,
    HOUR_S,
    STATS_PARTITION_KEY,
    STATS_TTL_ATTRIBUTE,
    OperatorStats,
    QueueState,
    buckets_within,
    operator_view,
)


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


def _stored(value):
    """A domain value as the item holds it: a dataclass as a map of its set fields, an enum by value,
    output options as the request spelled them."""
    if isinstance(value, OutputOptions):
        return {name: option for name, option in value.to_json().items() if option is not None}
    if is_dataclass(value):
        return {f.name: _stored(getattr(value, f.name)) for f in fields(value) if getattr(value, f.name) is not None}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _stored(v) for k, v in value.items()}
    return value


def _output_options(item: Mapping) -> OutputOptions:
    """The options an item holds; an item written before jobs stored them names only its format."""
    if "output" in item:
        return OutputOptions.from_request(_plain(item["output"]))
    return OutputOptions(format=OutputFormat(item["output_format"]))


def _result_file(result: dict) -> ResultFile:
    subject = result.get("subject")
    return ResultFile(
        **{
            "model": MODEL_BEFORE_CHOICE,
            **result,
            "format": OutputFormat(result["format"]),
            "subject": SubjectBox(**subject) if subject else None,
        }
    )


def job_from_item(item: Mapping) -> Job:
    """The job an item holds. Attributes this code does not know (written by a newer version
    during a deployment) stay in the table and are left out here."""
    attributes = {name: _plain(value) for name, value in item.items() if name in JOB_FIELDS}
    error, result = attributes.get("error"), attributes.get("result")
    return Job(
        **{
            **attributes,
            "status": JobStatus(attributes["status"]),
            "output": _output_options(item),
            "model": attributes.get("model", MODEL_BEFORE_CHOICE),
            "error": ErrorDetail(**error) if error else None,
            "result": _result_file(result) if result else None,
        }
    )


@dataclass
class _Update:
    """One conditional UpdateItem, built a clause at a time, with a placeholder for every
    attribute name and value."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)
    assignments: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)

    def name(self, attribute: str) -> str:
        placeholder = next((p for p, a in self.names.items() if a == attribute), f"#n{len(self.names)}")
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, path: str, value) -> str:
        """Assign value to path; the value's placeholder, for conditions on it."""
        placeholder = self.value(value)
        self.assignments.append(f"{path} = {placeholder}")
        return placeholder

    def require(self, condition: str) -> None:
        self.conditions.append(condition)

    def arguments(self, job_id: str) -> dict:
        return {
            "Key": {PARTITION_KEY: job_id},
            "UpdateExpression": "SET " + ", ".join(self.assignments),
            "ConditionExpression": " AND ".join(self.conditions),
            "ExpressionAttributeNames": self.names,
            "ExpressionAttributeValues": self.values,
        }


class JobRepository:
    def __init__(self, table_name: str, dynamodb_resource=None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    def create(self, job: Job) -> None:
        self._table.put_item(
            Item=_stored(job),
            ConditionExpression="attribute_not_exists(#key)",
            ExpressionAttributeNames={"#key": PARTITION_KEY},
        )

    def create_many(self, jobs: Iterable[Job]) -> None:
        """New jobs in as few writes as DynamoDB allows (25 a call). Unconditional: their ids are
        fresh uuid4s, which no job has."""
        with self._table.batch_writer() as writer:
            for job in jobs:
                writer.put_item(Item=_stored(job))

    def get(self, job_id: str, now: float) -> Job | None:
        item = self._table.get_item(Key={PARTITION_KEY: job_id}, ConsistentRead=True).get("Item")
        job = job_from_item(item) if item else None
        return job if job and is_live(job, now) else None

    def get_many(self, job_ids: list[str], now: float) -> dict[str, Job]:
        """The live jobs among job_ids (at most 100: one BatchGetItem), by id."""
        client = self._table.meta.client
        request = {self._table.name: {"Keys": [{PARTITION_KEY: job_id} for job_id in job_ids], "ConsistentRead": True}}
        jobs = {}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(self._table.name, []):
                job = job_from_item(item)
                if is_live(job, now):
                    jobs[job.job_id] = job
            request = response.get("UnprocessedKeys") or None
        return jobs

    def list_owned(self, owner: str, limit: int, start_after: dict | None) -> tuple[list[Job], dict | None]:
        """Up to limit of owner's jobs from the owner index, newest first, after the position a
        previous page ended at; and the position this page ended at (without the owner), or None
        at the end. Expired items DynamoDB has not deleted yet are in the page: the caller drops them."""
        query = {
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": Key(OWNER_ATTRIBUTE).eq(owner),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_after is not None:
            query["ExclusiveStartKey"] = {**start_after, OWNER_ATTRIBUTE: owner}
        response = self._table.query(**query)
        last = response.get("LastEvaluatedKey")
        position = {name: last[name] for name in LISTING_POSITION_KEYS} if last else None
        return [job_from_item(item) for item in response["Items"]], position

    def transition(
        self,
        job_id: str,
        expected: JobStatus | Iterable[JobStatus],
        target: JobStatus,
        now: float,
        *,
        upload_etag: str | None = None,
        before_hand_over: bool = False,
        **changes,
    ) -> Job | None:
        """Move a live job from an expected state to target, setting the Job fields in changes;
        None if it was not there.

        The condition makes the write atomic: of two concurrent deliveries only one moves the job.
        An upload_etag is recorded as the upload the job takes, and the job must have taken none
        or that one already: once set, it never changes. before_hand_over: only while the job's
        message was never recorded as sent.
        """
        unknown = set(changes) - JOB_FIELDS
        if unknown:
            raise TypeError(f"a job has no {', '.join(sorted(unknown))}")
        expected = [expected] if isinstance(expected, JobStatus) else list(expected)
        for current in expected:
            check_transition(current, target)
        update = _Update()
        status = update.name("status")
        update.require(f"{status} IN ({', '.join(update.value(s.value) for s in expected)})")
        update.require(f"{update.name(TTL_ATTRIBUTE)} > {update.value(int(now))}")
        update.set(status, target.value)
        update.set(update.name("updated_at"), iso(now))
        # A stage re-entered (a retried delivery) keeps when it was first entered: a redelivery racing
        # the one that moved the job on must not stamp an earlier stage after a later one.
        stage = f"{update.name('stages')}.{update.name(target.value)}"
        update.assignments.append(f"{stage} = if_not_exists({stage}, {update.value(iso(now))})")
        for name, value in changes.items():
            update.set(update.name(name), _stored(value))
        if upload_etag is not None:
            taken = update.name("upload_etag")
            etag = update.set(taken, upload_etag)
            update.require(f"(attribute_not_exists({taken}) OR {taken} = {etag})")
        if before_hand_over:
            update.require(f"attribute_not_exists({update.name('handed_over_at')})")
        attributes = self._update(job_id, update)
        return None if attributes is None else job_from_item(attributes)

    def settle(self, job: Job, settings: Settings, now: float) -> tuple[Job | None, JobStatus | None]:
        """The job, first moved on if its deadline passed (cutout.jobs.overdue_move), and the status
        this call moved it to (None: on time, or something else moved it first). The job is None
        when it could not be moved because it is gone (its retention ended)."""
        move = overdue_move(job, settings, now)
        if move is None:
            return job, None
        target, error = move
        moved = self.transition(job.job_id, job.status, target, now, error=error)
        if moved is not None:
            return moved, target
        current = self.get(job.job_id, now)  # something else moved it first: settle what it is now
        return (None, None) if current is None else self.settle(current, settings, now)

    def mark_handed_over(self, job_id: str, now: float) -> bool:
        """Record, once, that a queued job's message was sent; False if it already was or the job
        moved on. It is no transition: the job stays queued and updated_at keeps its meaning."""
        update = _Update()
        handed_over = update.name("handed_over_at")
        update.require(f"{update.name('status')} = {update.value(JobStatus.QUEUED.value)}")
        update.require(f"attribute_not_exists({handed_over})")
        update.set(handed_over, iso(now))
        return self._update(job_id, update) is not None

    def mark_callback_delivered(self, job_id: str, now: float) -> bool:
        """Record, once, that the job's callback URL answered its delivery; False if it already was."""
        update = _Update()
        delivered = update.name("callback_delivered_at")
        update.require(f"attribute_not_exists({delivered})")
        update.require(f"attribute_exists({update.name(PARTITION_KEY)})")
        update.set(delivered, iso(now))
        return self._update(job_id, update) is not None

    def _update(self, job_id: str, update: _Update) -> dict | None:
        """The item as the update left it; None if its condition did not hold."""
        try:
            return self._table.update_item(**update.arguments(job_id), ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise


# Where a page of the owner index ends, as DynamoDB names it, but the owner.
LISTING_POSITION_KEYS = frozenset({PARTITION_KEY, OWNER_INDEX_SORT_KEY})


class BatchRepository:
    def __init__(self, table_name: str, dynamodb_resource=None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    def create(self, batch: Batch) -> None:
        self._table.put_item(
            Item=_stored(batch),
            ConditionExpression="attribute_not_exists(#key)",
            ExpressionAttributeNames={"#key": BATCH_PARTITION_KEY},
        )

    def get(self, batch_id: str, now: float) -> Batch | None:
        item = self._table.get_item(Key={BATCH_PARTITION_KEY: batch_id}, ConsistentRead=True).get("Item")
        batch = Batch(**_plain(item)) if item else None
        return batch if batch and batch.expires_at > now else None

    def record_ended(self, batch_id: str, job_id: str) -> Batch | None:
        """Add the job to the batch's ended jobs (once, however often it is recorded) and return the
        batch as it now is; None if there is no such batch."""
        try:
            item = self._table.update_item(
                Key={BATCH_PARTITION_KEY: batch_id},
                UpdateExpression="ADD #ended :job",
                ConditionExpression="attribute_exists(#key)",
                ExpressionAttributeNames={"#ended": "ended_job_ids", "#key": BATCH_PARTITION_KEY},
                ExpressionAttributeValues={":job": {job_id}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return Batch(**_plain(item))

    def mark_completed(self, batch_id: str, now: float) -> bool:
        """Record, once, that the batch's completion was announced; False if it already was."""
        try:
            self._table.update_item(
                Key={BATCH_PARTITION_KEY: batch_id},
                UpdateExpression="SET #completed = :now",
                ConditionExpression="attribute_exists(#key) AND attribute_not_exists(#completed)",
                ExpressionAttributeNames={"#completed": "completed_at", "#key": BATCH_PARTITION_KEY},
                ExpressionAttributeValues={":now": iso(now)},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


class StatsCounters:
    """The five-minute counters of cutout.stats: one item per bucket, one attribute per counter."""

    def __init__(self, table_name: str, dynamodb_resource=None):
        self._table = (dynamodb_resource or boto3.resource("dynamodb")).Table(table_name)

    def add(self, bucket: str, counter: str, now: float) -> None:
        self._table.update_item(
            Key={STATS_PARTITION_KEY: bucket},
            UpdateExpression="ADD #counter :one SET #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames={"#counter": counter, "#ttl": STATS_TTL_ATTRIBUTE},
            ExpressionAttributeValues={":one": 1, ":ttl": int(now + BUCKET_RETENTION_S)},
        )

    def read(self, buckets: list[str]) -> list[dict]:
        """The items of those buckets that exist (at most 100 a call, as BatchGetItem takes them)."""
        client, items = self._table.meta.client, []
        for start in range(0, len(buckets), 100):
            request = {self._table.name: {"Keys": [{STATS_PARTITION_KEY: b} for b in buckets[start : start + 100]]}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                items.extend(_plain(item) for item in response["Responses"].get(self._table.name, []))
                request = response.get("UnprocessedKeys") or None
        return items


class ObjectStore:
    def __init__(self, bucket_name: str, s3_client=None, addressing_style: str = Settings.s3_addressing_style):
        self.bucket_name = bucket_name
        self._s3 = s3_client or boto3.client(
            "s3", config=Config(signature_version="s3v4", s3={"addressing_style": addressing_style})
        )

    def presign_upload(self, key: str, content_type: str, content_length: int, expires_in: int) -> str:
        """A PUT URL that signs Content-Type and Content-Length: S3 refuses any other bytes."""
        return self._s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket_name,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": content_length,
            },
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
    """A queue of job messages, ``{"job_id": ...}``: inference's, the webhook deliveries' or the deadline checks'."""

    def __init__(self, queue_url: str, sqs_client=None):
        self.queue_url = queue_url
        self._sqs = sqs_client or boto3.client("sqs")

    def send(self, job_id: str, delay_s: int = 0) -> None:
        """delay_s: the message is received no sooner (at most 900, SQS's limit)."""
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=job_message(job_id), DelaySeconds=delay_s)

    def retry_after(self, receipt_handle: str, delay_s: int) -> None:
        """Hide a received message for delay_s seconds: the next attempt comes no sooner."""
        self._sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay_s
        )

    def depths(self) -> dict[str, int]:
        """Messages waiting, and received but not yet deleted (in flight)."""
        names = {"ApproximateNumberOfMessages": "waiting", "ApproximateNumberOfMessagesNotVisible": "in_flight"}
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=list(names))["Attributes"]
        return {ours: int(attributes[theirs]) for theirs, ours in names.items()}


# SQS gives the oldest message's age only as a CloudWatch metric, published each minute.
AGE_METRIC_WINDOW_S = 300


def oldest_message_age_s(queue_url: str, now: float, cloudwatch_client=None) -> int | None:
    """The latest published age of the queue's oldest message; None without a datapoint (a queue
    CloudWatch has not seen yet, or an emulator that publishes no SQS metrics)."""
    client = cloudwatch_client or boto3.client("cloudwatch")
    points = client.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_url.rstrip("/").rsplit("/", 1)[-1]}],
        StartTime=datetime.fromtimestamp(now - AGE_METRIC_WINDOW_S, tz=UTC),
        EndTime=datetime.fromtimestamp(now, tz=UTC),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return int(max(points, key=lambda point: point["Timestamp"])["Maximum"]) if points else None


def operator_stats(queue_urls: Mapping[str, str], stats_table_name: str, now: float) -> OperatorStats:
    """cutout.stats.operator_view of a deployment, from its queues' attributes and its counters."""
    sqs, cloudwatch = boto3.client("sqs"), boto3.client("cloudwatch")
    queues = {
        name: QueueState(**JobQueue(url, sqs).depths(), oldest_age_s=oldest_message_age_s(url, now, cloudwatch))
        for name, url in queue_urls.items()
    }
    counters = StatsCounters(stats_table_name)
    return operator_view(queues, counters.read(buckets_within(now, HOUR_S)), counters.read(buckets_within(now, DAY_S)))


def usage_plans_of(key_id: str, apigateway_client=None) -> set[str]:
    """The names of the usage plans the API key belongs to."""
    client = apigateway_client or boto3.client("apigateway")
    pages = client.get_paginator("get_usage_plans").paginate(keyId=key_id)
    return {plan["name"] for page in pages for plan in page.get("items", [])}


class EventBus:
    def __init__(self, bus_name: str, events_client=None):
        self.bus_name = bus_name
        self._events = events_client or boto3.client("events")

    def publish(self, source: str, detail_type: str, detail: dict) -> None:
        """One event; raises if EventBridge did not take it, so the stream record is retried."""
        entry = {
            "EventBusName": self.bus_name,
            "Source": source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
        }
        response = self._events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            raise RuntimeError(
                f"EventBridge refused the event: {failure.get('ErrorCode')} {failure.get('ErrorMessage')}"
            )


def secret_value(secret_arn: str, secrets_client=None) -> str:
    client = secrets_client or boto3.client("secretsmanager")
    return client.get_secret_value(SecretId=secret_arn)["SecretString"]


# One of each per Lambda container, made on first use and reused by every invocation: creating
# clients costs more than most requests. Tests clear these caches between moto sessions.
@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def job_repository() -> JobRepository:
    return JobRepository(settings().table_name)


@functools.cache
def batch_repository() -> BatchRepository:
    return BatchRepository(settings().batch_table_name)


@functools.cache
def idempotency_store():
    # Imported here: only the api function uses it, and the other stages would pay for it at cold start.
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table_name,
        key_attr=IDEMPOTENCY_PARTITION_KEY,
        expiry_attr=IDEMPOTENCY_TTL_ATTRIBUTE,
    )


@functools.cache
def object_store() -> ObjectStore:
    return ObjectStore(settings().bucket_name, addressing_style=settings().s3_addressing_style)


@functools.cache
def job_queue() -> JobQueue:
    return JobQueue(settings().queue_url)


@functools.cache
def webhook_queue() -> JobQueue:
    return JobQueue(settings().webhook_queue_url)


@functools.cache
def deadline_queue() -> JobQueue:
    return JobQueue(settings().deadline_queue_url)


@functools.cache
def event_bus() -> EventBus:
    return EventBus(settings().event_bus_name)


@functools.cache
def stats_counters() -> StatsCounters:
    return StatsCounters(settings().stats_table_name)


@functools.cache
def webhook_secret() -> str:
    """Read once per container: a rotated secret reaches new containers."""
    return secret_value(settings().webhook_secret_arn)


SERVICES = (
    settings,
    job_repository,
    batch_repository,
    idempotency_store,
    object_store,
    job_queue,
    webhook_queue,
    deadline_queue,
    event_bus,
    stats_counters,
    webhook_secret,
)
