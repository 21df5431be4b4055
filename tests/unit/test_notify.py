"""The notifier against moto: what a change of a job item on the stream sends (events, webhook
messages, counters), and webhook deliveries to a real HTTP receiver on 127.0.0.1."""

import json
import time
import uuid

import pytest

from cutout.aws import BatchRepository, StatsCounters, settings
from cutout.batches import Batch
from cutout.errors import ErrorCode, ErrorDetail
from cutout.events import EVENT_SOURCE
from cutout.jobs import JobRequest, JobStatus, ResultFile, iso, new_job
from cutout.keys import job_message
from cutout.output import OutputFormat
from cutout.settings import Settings
from cutout.stats import HOUR_S, JobCounts, buckets_within, summary
from cutout.webhooks import EVENT_HEADER, SIGNATURE_HEADER, signature_is_valid
from cutout_notify import delivery
from cutout_notify.handler import deadline_handler, delivery_handler, stream_handler
from tests.support.fake_aws import ENVIRONMENT
from tests.support.inference import sqs_event
from tests.support.stream_events import inserted, modified, removed, stream_event
from tests.support.webhook_receiver import WebhookReceiver

WEBHOOK_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:cutout-webhooks"
S = JobStatus


@pytest.fixture
def receiver():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def failing_receiver():
    """A receiver that answers its first delivery 500."""
    with WebhookReceiver([500]) as receiver:
        yield receiver


@pytest.fixture
def local_webhooks(monkeypatch):
    """The local deployment's rule: callback URLs may be http on 127.0.0.1."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    settings.cache_clear()


def create_job(aws, callback_url: str | None = None, batch_id: str | None = None) -> str:
    job_id = str(uuid.uuid4())
    request = JobRequest("image/png", 1000, batch_id=batch_id, callback_url=callback_url)
    aws.jobs.create(new_job(job_id, request, Settings(webhook_allow_private=True), time.time()))
    return job_id


def change(aws, job_id: str, expected: JobStatus, target: JobStatus, **changes) -> dict:
    """Make a transition and return the stream record of it, from the item before and after."""
    before = aws.stored_item(job_id)
    assert aws.jobs.transition(job_id, expected, target, time.time(), **changes) is not None
    return modified(before, aws.stored_item(job_id))


def to_processing(aws, job_id: str) -> dict:
    change(aws, job_id, S.AWAITING_UPLOAD, S.NORMALIZING)
    change(aws, job_id, S.NORMALIZING, S.QUEUED)
    return change(aws, job_id, S.QUEUED, S.PROCESSING)


def end(aws, job_id: str, status: JobStatus) -> dict:
    """Move a new job to status the way its stage does; the stream record of the last move."""
    if status is S.SUCCEEDED:
        to_processing(aws, job_id)
        result = ResultFile(OutputFormat.PNG, "image/png", 64, 48, 1234, None, "u2netp")
        return change(aws, job_id, S.PROCESSING, S.SUCCEEDED, result=result, result_expires_at=int(time.time() + 3600))
    if status is S.FAILED:
        to_processing(aws, job_id)
        error = ErrorDetail(ErrorCode.CORRUPT_IMAGE, "the image could not be decoded")
        return change(aws, job_id, S.PROCESSING, S.FAILED, error=error)
    if status is S.EXPIRED:
        error = ErrorDetail(ErrorCode.UPLOAD_NOT_RECEIVED, "no upload arrived in time")
        return change(aws, job_id, S.AWAITING_UPLOAD, S.EXPIRED, error=error)
    return change(aws, job_id, S.AWAITING_UPLOAD, S.CANCELLED)


def handle_stream(lambda_context, *records: dict) -> None:
    assert stream_handler(stream_event(*records), lambda_context) == {"batchItemFailures": []}


def counters() -> JobCounts:
    return summary(StatsCounters(ENVIRONMENT["STATS_TABLE_NAME"]).read(buckets_within(time.time(), HOUR_S)))


def delivery_event(messages: list[dict], receive_count: int | None = None) -> dict:
    """The SQS event Lambda makes of messages received from the webhook queue (their real receipt handles)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    **message["Attributes"],
                    **({"ApproximateReceiveCount": str(receive_count)} if receive_count else {}),
                },
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": WEBHOOK_QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
            for message in messages
        ]
    }


def failed_message_ids(response: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def all_strings(value) -> list[str]:
    """Every key and string value nested in a JSON value."""
    if isinstance(value, dict):
        return [*value, *(s for item in value.values() for s in all_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in all_strings(item)]
    return [value] if isinstance(value, str) else []


def test_a_job_that_succeeds_emits_one_event_without_urls_and_queues_its_webhook(aws, notifications, lambda_context):
    job_id = create_job(aws, callback_url="https://93.184.216.34/hook")

    handle_stream(lambda_context, end(aws, job_id, S.SUCCEEDED))

    [event] = notifications.events()
    assert (event["source"], event["detail-type"]) == (EVENT_SOURCE, "Job Succeeded")
    detail = event["detail"]
    assert detail["event_id"] == f"{job_id}.succeeded"
    assert (detail["job_id"], detail["status"]) == (job_id, "succeeded")
    assert detail["result"]["width"] == 64 and detail["result"]["format"] == "png"
    assert "url" not in all_strings(detail) and not any("http" in s for s in all_strings(detail))
    assert [message["Body"] for message in notifications.receive_webhooks()] == [job_message(job_id)]


def test_a_job_without_a_callback_url_queues_no_webhook(aws, notifications, lambda_context):
    job_id = create_job(aws)

    handle_stream(lambda_context, end(aws, job_id, S.SUCCEEDED))

    assert [event["detail-type"] for event in notifications.events()] == ["Job Succeeded"]
    assert notifications.receive_webhooks() == []


@pytest.mark.parametrize(
    "status, detail_type",
    [(S.FAILED, "Job Failed"), (S.CANCELLED, "Job Cancelled"), (S.EXPIRED, "Job Expired")],
)
def test_every_terminal_status_has_its_detail_type(aws, notifications, lambda_context, status, detail_type):
    job_id = create_job(aws, callback_url="https://93.184.216.34/hook")

    handle_stream(lambda_context, end(aws, job_id, status))

    [event] = notifications.events()
    assert event["detail-type"] == detail_type
    assert event["detail"]["event_id"] == f"{job_id}.{status.value}"
    assert len(notifications.receive_webhooks()) == 1


def test_a_move_between_live_states_emits_nothing(aws, notifications, lambda_context):
    job_id = create_job(aws, callback_url="https://93.184.216.34/hook")
    moves = [
        change(aws, job_id, S.AWAITING_UPLOAD, S.NORMALIZING),
        change(aws, job_id, S.NORMALIZING, S.QUEUED),
        change(aws, job_id, S.QUEUED, S.PROCESSING),
    ]

    handle_stream(lambda_context, *moves)

    assert notifications.events() == []
    assert notifications.receive_webhooks() == []


def test_changes_of_an_ended_job_emit_nothing_more(aws, notifications, lambda_context):
    job_id = create_job(aws, callback_url="https://93.184.216.34/hook")
    handle_stream(lambda_context, end(aws, job_id, S.SUCCEEDED))
    assert len(notifications.events()) == 1 and len(notifications.receive_webhooks(visibility_timeout_s=600)) == 1
    before = aws.stored_item(job_id)
    assert aws.jobs.mark_callback_delivered(job_id, time.time())
    delivered = modified(before, aws.stored_item(job_id))

    handle_stream(lambda_context, delivered, removed(aws.stored_item(job_id)))  # then TTL deletes it

    assert notifications.events() == []
    assert notifications.receive_webhooks(visibility_timeout_s=0) == []


def test_creations_and_ends_are_counted_by_outcome_and_error_code(aws, notifications, lambda_context):
    created = [create_job(aws) for _ in range(4)]
    handle_stream(lambda_context, *(inserted(aws.stored_item(job_id)) for job_id in created))
    succeeded, failed, cancelled, expired = created

    handle_stream(
        lambda_context,
        end(aws, succeeded, S.SUCCEEDED),
        end(aws, failed, S.FAILED),
        end(aws, cancelled, S.CANCELLED),
        end(aws, expired, S.EXPIRED),
    )

    assert counters() == JobCounts(
        created=4, succeeded=1, cancelled=1, expired=1, failed=1, failed_by_code={"corrupt_image": 1}
    )
    assert [event["detail-type"] for event in notifications.events()] == [
        "Job Succeeded",
        "Job Failed",
        "Job Cancelled",
        "Job Expired",
    ]


def test_a_batch_completes_once_when_its_last_job_ends(aws, notifications, lambda_context):
    batch_id = str(uuid.uuid4())
    first, second = create_job(aws, batch_id=batch_id), create_job(aws, batch_id=batch_id)
    now = time.time()
    BatchRepository(ENVIRONMENT["BATCH_TABLE_NAME"]).create(
        Batch(batch_id=batch_id, created_at=iso(now), job_ids=[first, second], expires_at=int(now + 3600))
    )

    first_end = end(aws, first, S.SUCCEEDED)
    handle_stream(lambda_context, first_end)
    handle_stream(lambda_context, first_end)  # a repeat of an end is recorded once
    assert [event["detail-type"] for event in notifications.events()] == ["Job Succeeded"] * 2
    assert BatchRepository(ENVIRONMENT["BATCH_TABLE_NAME"]).get(batch_id, now).ended_job_ids == {first}
    last = end(aws, second, S.FAILED)
    handle_stream(lambda_context, last)
    handle_stream(lambda_context, last)  # the stream delivers a record again

    events = notifications.events()
    [completed] = [event for event in events if event["detail-type"] == "Batch Completed"]
    assert [event["detail-type"] for event in events].count("Job Failed") == 2  # at least once
    assert completed["source"] == EVENT_SOURCE
    assert completed["detail"]["event_id"] == f"{batch_id}.completed"
    assert completed["detail"]["jobs"] == [
        {"job_id": first, "status": "succeeded"},
        {"job_id": second, "status": "failed"},
    ]
    assert {k: v for k, v in completed["detail"]["counts"].items() if v} == {"succeeded": 1, "failed": 1}


def deliver_queued(notifications, lambda_context, receive_count: int | None = None) -> tuple[dict, list[dict]]:
    messages = notifications.receive_webhooks(visibility_timeout_s=0)
    assert len(messages) == 1
    return delivery_handler(delivery_event(messages, receive_count), lambda_context), messages


@pytest.mark.usefixtures("local_webhooks")
def test_a_delivery_posts_the_signed_job_view_once(aws, notifications, receiver, lambda_context):
    job_id = create_job(aws, callback_url=receiver.url())
    handle_stream(lambda_context, end(aws, job_id, S.SUCCEEDED))

    response, _ = deliver_queued(notifications, lambda_context)

    assert response == {"batchItemFailures": []}
    [delivery] = receiver.deliveries
    assert delivery.path == "/hook"
    assert delivery.headers[EVENT_HEADER] == "job.succeeded"
    assert delivery.headers["Content-Type"] == "application/json"
    assert signature_is_valid(notifications.secret, delivery.headers[SIGNATURE_HEADER], delivery.body, time.time())
    assert not signature_is_valid("another secret", delivery.headers[SIGNATURE_HEADER], delivery.body, time.time())
    body = json.loads(delivery.body)
    assert (body["job_id"], body["status"]) == (job_id, "succeeded")
    assert body["result"]["url"].startswith("https://") and body["result"]["width"] == 64
    assert aws.jobs.get(job_id, time.time()).callback_delivered_at is not None

    again, _ = deliver_queued(notifications, lambda_context, receive_count=2)  # redelivered

    assert again == {"batchItemFailures": []}
    assert len(receiver.deliveries) == 1


@pytest.mark.usefixtures("local_webhooks")
def test_a_failed_job_is_delivered_with_its_error(aws, notifications, receiver, lambda_context):
    job_id = create_job(aws, callback_url=receiver.url())
    handle_stream(lambda_context, end(aws, job_id, S.FAILED))

    assert deliver_queued(notifications, lambda_context)[0] == {"batchItemFailures": []}

    [delivery] = receiver.deliveries
    assert delivery.headers[EVENT_HEADER] == "job.failed"
    body = json.loads(delivery.body)
    assert (body["status"], body["error"]["code"], body["result"]) == ("failed", "corrupt_image", None)


def queue_deliveries(aws, lambda_context, *callback_urls: str) -> list[str]:
    """Jobs with these callback URLs that succeeded, their webhooks queued by the notifier."""
    job_ids = [create_job(aws, callback_url=url) for url in callback_urls]
    handle_stream(lambda_context, *(end(aws, job_id, S.SUCCEEDED) for job_id in job_ids))
    return job_ids


def message_of(messages: list[dict], job_id: str) -> dict:
    [message] = [message for message in messages if message["Body"] == job_message(job_id)]
    return message


# Each batch below holds a delivery that succeeds next to the one under test, so the answer is a
# partial one whatever the processor does when every record of a batch fails.


@pytest.mark.usefixtures("local_webhooks")
def test_a_receiver_error_is_retried_later(aws, notifications, receiver, failing_receiver, lambda_context):
    failing, working = queue_deliveries(aws, lambda_context, failing_receiver.url(), receiver.url())
    messages = notifications.receive_webhooks(visibility_timeout_s=0)

    response = delivery_handler(delivery_event(messages), lambda_context)

    assert failed_message_ids(response) == [message_of(messages, failing)["MessageId"]]
    assert (len(failing_receiver.deliveries), len(receiver.deliveries)) == (1, 1)
    # Both were received with no visibility timeout: only the handler's retry delay hides the failed
    # one (the delivered one is left for Lambda to delete).
    assert [message["Body"] for message in notifications.receive_webhooks()] == [job_message(working)]
    assert aws.jobs.get(failing, time.time()).callback_delivered_at is None
    assert aws.jobs.get(working, time.time()).callback_delivered_at is not None


@pytest.mark.usefixtures("local_webhooks")
def test_after_the_last_attempt_the_message_goes_to_the_dead_letter_queue(
    aws, notifications, receiver, failing_receiver, lambda_context
):
    failing, _ = queue_deliveries(aws, lambda_context, failing_receiver.url(), receiver.url())
    attempts = settings().webhook_attempts
    for _ in range(attempts - 1):  # the earlier attempts, as far as the queue counts receives
        assert len(notifications.receive_webhooks(visibility_timeout_s=0)) == 2
    messages = notifications.receive_webhooks(visibility_timeout_s=600)
    last = message_of(messages, failing)
    assert last["Attributes"]["ApproximateReceiveCount"] == str(attempts)

    response = delivery_handler(delivery_event(messages), lambda_context)

    assert failed_message_ids(response) == [last["MessageId"]]
    # Hidden for 600 s when received, made visible again at once: the next receive dead-letters it.
    assert notifications.receive_webhooks() == []
    assert notifications.dead_letters() == [job_message(failing)]


def test_a_private_callback_url_is_not_called_where_private_addresses_are_refused(
    aws, notifications, receiver, lambda_context
):
    private, delivered_before = queue_deliveries(aws, lambda_context, receiver.url("/private"), receiver.url())
    assert aws.jobs.mark_callback_delivered(delivered_before, time.time())  # its message comes again
    messages = notifications.receive_webhooks(visibility_timeout_s=0)

    response = delivery_handler(delivery_event(messages), lambda_context)

    assert failed_message_ids(response) == [message_of(messages, private)["MessageId"]]
    assert receiver.deliveries == []
    assert aws.jobs.get(private, time.time()).callback_delivered_at is None


@pytest.mark.usefixtures("local_webhooks")
def test_a_lone_failed_delivery_is_reported_not_raised(aws, notifications, failing_receiver, lambda_context):
    [job_id] = queue_deliveries(aws, lambda_context, failing_receiver.url())
    [message] = notifications.receive_webhooks(visibility_timeout_s=0)

    response = delivery_handler(delivery_event([message]), lambda_context)

    assert failed_message_ids(response) == [message["MessageId"]]
    assert aws.jobs.get(job_id, time.time()).callback_delivered_at is None


@pytest.mark.usefixtures("local_webhooks")
def test_a_delivery_tries_the_next_checked_address_when_one_does_not_answer(
    aws, notifications, receiver, lambda_context, monkeypatch
):
    # Nothing listens on ::1 at the receiver's port: as a receiver's IPv6 address seen from Lambda.
    monkeypatch.setattr(delivery, "host_addresses", lambda host: ["::1", "127.0.0.1"])
    _, delivered_before = queue_deliveries(aws, lambda_context, receiver.url(), receiver.url("/before"))
    assert aws.jobs.mark_callback_delivered(delivered_before, time.time())
    messages = notifications.receive_webhooks(visibility_timeout_s=0)

    response = delivery_handler(delivery_event(messages), lambda_context)

    assert failed_message_ids(response) == []
    assert len(receiver.deliveries) == 1


def check_deadlines(lambda_context, *job_ids: str) -> dict:
    return deadline_handler(sqs_event(*((job_message(job_id), 1) for job_id in job_ids)), lambda_context)


def test_a_new_job_gets_a_deadline_check_scheduled_no_later_than_sqs_allows(aws, deadline_checks_sent, lambda_context):
    job_id = create_job(aws)

    handle_stream(lambda_context, inserted(aws.stored_item(job_id)))

    (check,) = deadline_checks_sent
    assert json.loads(check["MessageBody"]) == {"job_id": job_id}
    # The upload window is 900 s: the check comes a second after it, capped at SQS's 900 s.
    assert check["DelaySeconds"] == 900


def test_a_job_whose_upload_never_came_expires_at_its_deadline_and_is_announced(
    aws, notifications, deadline_checks_sent, lambda_context
):
    job_id = create_job(aws, callback_url="http://127.0.0.1:9/hook")
    aws.overwrite(job_id, "upload_expires_at", int(time.time()) - 1)
    before = aws.stored_item(job_id)

    assert check_deadlines(lambda_context, job_id)["batchItemFailures"] == []

    job = aws.jobs.get(job_id, time.time())
    assert job.status is S.EXPIRED and job.error.code == ErrorCode.UPLOAD_NOT_RECEIVED
    # The move is announced from the stream, as any end is.
    handle_stream(lambda_context, modified(before, aws.stored_item(job_id)))
    assert [event["detail-type"] for event in notifications.events()] == ["Job Expired"]
    assert deadline_checks_sent == [], "an ended job is not checked again"


def test_a_job_stuck_in_processing_past_the_stall_timeout_fails_stalled(aws, notifications, lambda_context):
    job_id = create_job(aws)
    to_processing(aws, job_id)
    aws.overwrite(job_id, "updated_at", iso(time.time() - Settings().stall_timeout_s - 1))

    check_deadlines(lambda_context, job_id)

    job = aws.jobs.get(job_id, time.time())
    assert job.status is S.FAILED and job.error.code == ErrorCode.STALLED


def test_a_job_still_on_time_is_checked_again_when_it_is_due(aws, deadline_checks_sent, lambda_context):
    job_id = create_job(aws)
    to_processing(aws, job_id)

    check_deadlines(lambda_context, job_id)

    assert aws.jobs.get(job_id, time.time()).status is S.PROCESSING
    (again,) = deadline_checks_sent
    assert json.loads(again["MessageBody"]) == {"job_id": job_id}
    assert again["DelaySeconds"] == 900, "the stall timeout (1800 s) is further away than SQS delays"


def test_a_check_of_a_job_that_is_gone_does_nothing(aws, deadline_checks_sent, lambda_context):
    assert check_deadlines(lambda_context, str(uuid.uuid4()))["batchItemFailures"] == []
    assert deadline_checks_sent == []
