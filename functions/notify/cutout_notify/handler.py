"""The notifier: what follows a job's end, from the jobs table's stream, and webhook deliveries.

``stream_handler`` reads every change of a job item. A new job adds to the created counter and
gets its deadline check scheduled; a job that reached a terminal status gets its EventBridge
event, its webhook delivery queued (when it named a callback URL), its end counted, and its
batch's "Batch Completed" event once the batch's last job ended. A record that fails is retried
with the records after it (Lambda resumes at the first failure Powertools reports), so every end
is announced at least once.

``deadline_handler`` checks each new job when its deadline comes (cutout.jobs.deadline_of, the
stream schedules the first check): an upload that never came expires the job, a lost worker fails
it, and a job still on time is checked again when it is due, so a job that nobody polls ends too.

``delivery_handler`` POSTs a job's view, with a fresh result URL, to its callback URL, signed. A
2xx ends the delivery; anything else is tried again after a growing delay (the message is hidden
that long), and after the last attempt the message goes to the dead-letter queue.
"""

import json
import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from cutout.aws import (
    batch_repository,
    deadline_queue,
    event_bus,
    job_from_item,
    job_repository,
    object_store,
    settings,
    stats_counters,
    webhook_queue,
    webhook_secret,
)
from cutout.events import BATCH_COMPLETED, EVENT_SOURCE, JobEvent, batch_detail, has_ended, job_detail
from cutout.jobs import Job, JobStatus, check_delay_s, overdue_metric
from cutout.keys import job_id_in_message
from cutout.stats import CREATED, bucket_of, end_counter
from cutout.views import client_view, view_json
from cutout.webhooks import EVENT_HEADER, SIGNATURE_HEADER, is_success, retry_delay_s, signature
from cutout_notify.delivery import DeliveryRefused, post_json

logger = Logger()
tracer = Tracer()
metrics = Metrics()
stream_processor = BatchProcessor(event_type=EventType.DynamoDBStreams, logger=logger)
# A receiver that fails is the client's problem, retried on schedule: not an error of this function
# (which would page the operator through its Errors alarm).
delivery_processor = BatchProcessor(event_type=EventType.SQS, logger=logger, raise_on_entire_batch_failure=False)
deadline_processor = BatchProcessor(event_type=EventType.SQS, logger=logger)


def announce_batch_if_done(batch_id: str, job_id: str, now: float) -> None:
    """Record the job's end on its batch; the end that leaves none of its jobs running announces it.
    Only that one reads the batch's jobs, for the event's counts."""
    batch = batch_repository().record_ended(batch_id, job_id)
    if batch is None or batch.completed_at is not None or not batch.all_ended:
        return
    found = job_repository().get_many(batch.job_ids, now)
    jobs = [found[job_id] for job_id in batch.job_ids if job_id in found]
    # Sent before it is recorded: a crash in between sends it again (at least once), never not at all.
    event_bus().publish(EVENT_SOURCE, BATCH_COMPLETED, batch_detail(batch, jobs))
    batch_repository().mark_completed(batch_id, now)
    logger.info("batch completed", extra={"batch_id": batch_id})


def announce_end(job: Job, now: float) -> None:
    # The idempotent steps first: a retry after a failure repeats them harmlessly, and the counter,
    # which would count twice, comes last.
    event = JobEvent.of(job.status)
    event_bus().publish(EVENT_SOURCE, event.detail_type, job_detail(job))
    if job.callback_url is not None:
        webhook_queue().send(job.job_id)
    if job.batch_id is not None:
        announce_batch_if_done(job.batch_id, job.job_id, now)
    stats_counters().add(bucket_of(now), end_counter(job), now)
    logger.info("job ended", extra={"job_id": job.job_id, "event": event.value})


def handle_change(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    if record.event_name is DynamoDBRecordEventName.REMOVE or not change.new_image:
        return  # TTL deleted an item whose end, if it had one, was announced already
    job, now = job_from_item(change.new_image), time.time()
    if record.event_name is DynamoDBRecordEventName.INSERT:
        schedule_deadline_check(job, now)
        stats_counters().add(bucket_of(now), CREATED, now)
        return
    before = (change.old_image or {}).get("status")
    if has_ended(JobStatus(before) if before else None, job.status):
        announce_end(job, now)


def schedule_deadline_check(job: Job, now: float) -> None:
    delay_s = check_delay_s(job, settings(), now)
    if delay_s is not None:
        deadline_queue().send(job.job_id, delay_s)


def check_deadline(record: SQSRecord) -> None:
    """Move the job on if its deadline passed (its end is then announced from the stream), else
    check again when it is due: a job nobody polls still ends."""
    job_id, now = job_id_in_message(record.body), time.time()
    logger.append_keys(job_id=job_id)
    job = job_repository().get(job_id, now)
    if job is None:
        return
    current, moved_to = job_repository().settle(job, settings(), now)
    if moved_to is not None:
        logger.warning("moved an overdue job", extra={"from": job.status, "to": moved_to})
        metrics.add_metric(name=overdue_metric(moved_to), unit=MetricUnit.Count, value=1)
    if current is not None:
        schedule_deadline_check(current, now)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def deadline_handler(event: dict, context) -> dict:
    return process_partial_response(
        event=event, record_handler=check_deadline, processor=deadline_processor, context=context
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def stream_handler(event: dict, context) -> dict:
    return process_partial_response(
        event=event, record_handler=handle_change, processor=stream_processor, context=context
    )


def deliver(record: SQSRecord) -> None:
    job_id = job_id_in_message(record.body)
    attempt = int(record.attributes.approximate_receive_count)
    logger.append_keys(job_id=job_id, attempt=attempt)
    now = time.time()
    job = job_repository().get(job_id, now)
    if job is None or job.callback_url is None or job.callback_delivered_at is not None:
        logger.info("nothing to deliver: the job is gone, has no callback URL, or was delivered")
        return
    view = client_view(job, now, settings(), object_store().presign_download)
    body, timestamp = json.dumps(view_json(view), separators=(",", ":")).encode(), int(now)
    headers = {
        # The status the body shows: a result that expired before its delivery reads expired in both.
        EVENT_HEADER: JobEvent.of(view.status).value,
        SIGNATURE_HEADER: signature(webhook_secret(), timestamp, body),
    }
    try:
        status = post_json(
            job.callback_url,
            body,
            headers,
            timeout_s=settings().webhook_timeout_s,
            allow_private=settings().webhook_allow_private,
        )
    except (DeliveryRefused, OSError) as error:
        raise not_delivered(record, attempt, f"{type(error).__name__}: {error}") from error
    if not is_success(status):
        raise not_delivered(record, attempt, f"the receiver answered {status}")
    job_repository().mark_callback_delivered(job_id, time.time())
    metrics.add_metric(name="WebhooksDelivered", unit=MetricUnit.Count, value=1)
    logger.info("webhook delivered", extra={"status": status})


def not_delivered(record: SQSRecord, attempt: int, reason: str) -> Exception:
    """This attempt failed: the message is hidden until the next one is due, or dead-lettered after the last."""
    last = attempt >= settings().webhook_attempts
    delay_s = 0 if last else retry_delay_s(attempt, settings().webhook_first_retry_s)
    webhook_queue().retry_after(record.receipt_handle, delay_s)
    if last:
        metrics.add_metric(name="WebhooksDeadLettered", unit=MetricUnit.Count, value=1)
    logger.warning("webhook not delivered", extra={"reason": reason, "last_attempt": last, "retry_in_s": delay_s})
    return RuntimeError(f"webhook not delivered: {reason}")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def delivery_handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=deliver, processor=delivery_processor, context=context)
