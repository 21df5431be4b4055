"""moto-backed AWS resources shaped like the deployed stack's: the job table, the bucket, the queues."""

import contextlib
import json
import os
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from cutout.aws import SERVICES, JobQueue, JobRepository, ObjectStore
from cutout.jobs import PARTITION_KEY
from cutout.settings import Settings
from tests.support.fake_aws import create_api_tables
from tests.support.inference import provisioned_model
from tests.support.lambda_runtime import LambdaContext


@dataclass
class Aws:
    table_name: str
    bucket_name: str
    queue_url: str
    jobs: JobRepository
    store: ObjectStore
    queue: JobQueue

    @property
    def s3(self):
        return boto3.client("s3")

    @property
    def sqs(self):
        return boto3.client("sqs")

    def object_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket_name)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def overwrite(self, job_id: str, attribute: str, value) -> None:
        """Set a stored attribute behind the repository's back: a deadline as time passing leaves it."""
        boto3.resource("dynamodb").Table(self.table_name).update_item(
            Key={PARTITION_KEY: job_id},
            UpdateExpression="SET #attribute = :value",
            ExpressionAttributeNames={"#attribute": attribute},
            ExpressionAttributeValues={":value": value},
        )

    def stored_item(self, job_id: str) -> dict:
        return boto3.resource("dynamodb").Table(self.table_name).get_item(Key={PARTITION_KEY: job_id})["Item"]

    def queued_job_ids(self) -> list[str]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"])["job_id"] for m in messages]


def forget_services() -> None:
    """Each test gets clients and settings made inside its own moto session and environment."""
    for service in SERVICES:
        service.cache_clear()


@pytest.fixture
def aws():
    forget_services()
    with mock_aws():
        table_name, bucket_name = os.environ["TABLE_NAME"], os.environ["BUCKET_NAME"]
        create_api_tables(boto3.client("dynamodb"), os.environ)
        boto3.client("s3").create_bucket(Bucket=bucket_name)
        queue_url = boto3.client("sqs").create_queue(QueueName="cutout-inference")["QueueUrl"]
        assert queue_url == os.environ["QUEUE_URL"]
        yield Aws(
            table_name=table_name,
            bucket_name=bucket_name,
            queue_url=queue_url,
            jobs=JobRepository(table_name),
            store=ObjectStore(bucket_name),
            queue=JobQueue(queue_url),
        )
    forget_services()


@dataclass
class Notifications:
    """What the notifier writes to besides the tables: the webhook queue (with its dead-letter
    queue), the deadline checks' queue, and a queue that a rule on the event bus sends every event to."""

    webhook_queue_url: str
    deadline_queue_url: str
    dead_letter_url: str
    events_url: str
    secret: str

    @property
    def sqs(self):
        return boto3.client("sqs")

    def events(self) -> list[dict]:
        """The events the bus delivered since the last call, oldest first."""
        events = []
        while messages := self.sqs.receive_message(QueueUrl=self.events_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.events_url, ReceiptHandle=message["ReceiptHandle"])
        return events

    def receive_webhooks(self, visibility_timeout_s: int = 30) -> list[dict]:
        """Webhook messages as the delivery function's event source receives them, receive count included."""
        return self.sqs.receive_message(
            QueueUrl=self.webhook_queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility_timeout_s,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])

    def dead_letters(self) -> list[str]:
        messages = self.sqs.receive_message(QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10).get("Messages", [])
        return [message["Body"] for message in messages]


@pytest.fixture
def notifications(aws):
    """The notifier's queue, event bus and secret, named as its environment says (tests.support.fake_aws)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    dead_letter_url = sqs.create_queue(QueueName="cutout-notifications-dlq")["QueueUrl"]
    assert dead_letter_url == os.environ["NOTIFICATION_DEAD_LETTER_QUEUE_URL"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"]
    redrive = {"deadLetterTargetArn": dead_letter_arn["QueueArn"], "maxReceiveCount": Settings.webhook_attempts}
    webhook_queue_url = sqs.create_queue(
        QueueName="cutout-webhooks", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    assert webhook_queue_url == os.environ["WEBHOOK_QUEUE_URL"]
    deadline_queue_url = sqs.create_queue(QueueName="cutout-deadlines")["QueueUrl"]
    assert deadline_queue_url == os.environ["DEADLINE_QUEUE_URL"]
    events_url = sqs.create_queue(QueueName="cutout-events-seen")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = os.environ["EVENT_BUS_NAME"]
    events.create_event_bus(Name=bus)
    # Every event on the bus carries the account: the pattern matches them all.
    events.put_rule(Name="everything", EventBusName=bus, EventPattern=json.dumps({"account": ["123456789012"]}))
    events.put_targets(Rule="everything", EventBusName=bus, Targets=[{"Id": "seen", "Arn": events_arn}])
    secret = "whsec-unit-tests"
    boto3.client("secretsmanager").create_secret(Name=os.environ["WEBHOOK_SECRET_ARN"], SecretString=secret)
    return Notifications(webhook_queue_url, deadline_queue_url, dead_letter_url, events_url, secret)


@contextlib.contextmanager
def before_calls():
    """hook("service.Operation", handler) runs handler before each such call of clients made
    from boto3's default session; every hook is removed on exit."""
    events = boto3.DEFAULT_SESSION.events
    armed = []

    def hook(operation: str, handler) -> None:
        event = f"before-call.{operation}"
        events.register(event, handler)
        armed.append((event, handler))

    try:
        yield hook
    finally:
        for event, handler in armed:
            events.unregister(event, handler)


@pytest.fixture
def deadline_checks_sent(notifications):
    """The parameters of every message sent to the deadline queue from now on (delays included)."""
    sent: list[dict] = []

    def record(params, **_) -> None:
        if params["QueueUrl"] == notifications.deadline_queue_url:
            sent.append(params)

    # Before the request is built, the handler sees the call's own parameters.
    events = boto3.DEFAULT_SESSION.events
    events.register("before-parameter-build.sqs.SendMessage", record)
    try:
        yield sent
    finally:
        events.unregister("before-parameter-build.sqs.SendMessage", record)


class RefusedCall:
    status_code = 400


@pytest.fixture
def throttle_dynamodb(aws):
    """Make DynamoDB refuse the next calls of an operation with the error AWS answers under load.

    It applies to clients made after it is armed — the functions' own, made on their first
    invocation — not to the test's `aws.jobs`, so the test still reads the true state.
    """
    with before_calls() as hook:

        def arm(operation: str, times: int) -> None:
            refusals = iter(range(times))

            def refuse(**_):
                if next(refusals, None) is None:
                    return None
                throttled = {
                    "Code": "ProvisionedThroughputExceededException",
                    "Message": "Rate of requests exceeds the allowed throughput.",
                }
                return RefusedCall(), {"Error": throttled, "ResponseMetadata": {"HTTPStatusCode": 400}}

            hook(f"dynamodb.{operation}", refuse)

        yield arm


@pytest.fixture
def interleave(aws):
    """Run an action once, right before the nth call of an AWS operation (e.g. "s3.PutObject"):
    another delivery racing the one under test, at a chosen step of it, with no change to our code.

    Like throttle_dynamodb it applies to clients made after it is armed (the functions' own, made
    on their first invocation; not the test's `aws.jobs` and `aws.store`), and it counts their
    calls only, the ones the action makes too.
    """
    with before_calls() as hook:

        def arm(operation: str, nth: int, action) -> None:
            calls = iter(range(1, nth + 1))

            def run_on_nth(**_):
                if next(calls, None) == nth:
                    action()

            hook(operation, run_on_nth)

        yield arm


@pytest.fixture
def lambda_context():
    return LambdaContext()


@pytest.fixture(scope="session")
def inference():
    """The inference function's handler, with the model where the function is told to find it."""
    os.environ["CUTOUT_MODEL_DIR"] = str(provisioned_model().parent)
    from cutout_inference import handler as inference_handler

    return inference_handler.lambda_handler
