"""S3 ObjectCreated on uploads/ entry point: validate and prepare each upload, queue it for inference.

A job takes one upload: the first whose bytes normalize reads while the job awaits one. Its S3
ETag is recorded as the job moves to normalizing, and from then on only that upload's event (a
duplicate, or the retry of a failed attempt) works on the job, reading exactly those bytes. The
upload URL can be PUT again for as long as it lives; any other upload costs a table read and a
delete. So the prepared source is only ever written from the job's own upload, while the job is
normalizing it; a duplicate run that loses the move to queued and finds the job already ended
deletes the source it wrote late.

Every step is idempotent and every state change conditional, so a duplicate or retried event
either finishes what an earlier attempt left undone or finds nothing to do. A bad image ends
its job failed and is never retried; an AWS error propagates so Lambda's async retry applies,
and when Lambda gives up on an event, ``gave_up_handler`` (its on-failure destination) fails
the job and deletes what the attempts left.
"""

import time
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source

from cutout.aws import (
    ObjectMissing,
    ObjectReplaced,
    ObjectTooLarge,
    job_queue,
    job_repository,
    object_store,
    settings,
)
from cutout.errors import ErrorCode, JobRejected
from cutout.jobs import (
    NORMALIZE_GIVES_UP_ON,
    Job,
    JobStatus,
    needs_its_upload,
    needs_prepared_source,
    normalize_gave_up_error,
    resumes_hand_over,
    takes_upload,
)
from cutout.keys import job_id_from_upload_key, prepared_key
from cutout_normalize.image import prepare

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@tracer.capture_method
def normalize_upload(key: str, etag: str) -> None:
    job_id = job_id_from_upload_key(key)
    if job_id is None:
        logger.warning("deleted an upload that belongs to no job", extra={"key": key})
        object_store().delete(key)
        return
    job = job_repository().get(job_id, time.time())
    if job is None or not takes_upload(job, etag):
        settle_upload(job, key, etag)
        return
    try:
        data = object_store().read(key, settings().max_upload_bytes, etag)
    except (ObjectMissing, ObjectReplaced):
        if job.upload_etag is not None:
            # The job's own upload is gone while the job still needs it. A live run of its first
            # delivery may hold the bytes and finish; otherwise the retries end in gave_up_handler.
            raise
        logger.info("stale event: its upload was replaced or removed", extra={"job_id": job_id})
        return
    except ObjectTooLarge as error:
        limit = settings().max_upload_bytes
        too_large = f"the upload is {error.size} bytes; the limit is {limit} bytes"
        if take_upload(job_id, key, etag):
            reject(job_id, key, JobRejected(ErrorCode.TOO_LARGE, too_large, {"max_bytes": limit}))
        return
    if not take_upload(job_id, key, etag):
        return
    try:
        prepared = prepare(data, job.content_length, settings())
    except JobRejected as rejection:
        reject(job_id, key, rejection)
        return
    object_store().write(prepared_key(job_id), prepared.body, prepared.content_type)
    queued = job_repository().transition(
        job_id,
        JobStatus.NORMALIZING,
        JobStatus.QUEUED,
        time.time(),
        width=prepared.width,
        height=prepared.height,
        prepared_content_type=prepared.content_type,
    )
    if queued is None:
        # Another delivery of this upload queued the job first and takes care of the rest.
        logger.info("job moved on while normalizing", extra={"job_id": job_id})
        discard_late_source(job_id)
        return
    hand_over(job_id, key)
    logger.info(
        "upload normalized",
        extra={
            "job_id": job_id,
            "width": prepared.width,
            "height": prepared.height,
            "content_type": prepared.content_type,
            "reencoded": prepared.reencoded,
        },
    )
    metrics.add_metric(name="UploadsNormalized", unit=MetricUnit.Count, value=1)


def take_upload(job_id: str, key: str, etag: str) -> bool:
    """Move the job to normalizing, recording that this upload is the one it takes; False, with
    the upload settled, when another delivery took a different one first or the job moved on."""
    taken = job_repository().transition(
        job_id,
        {JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING},
        JobStatus.NORMALIZING,
        time.time(),
        upload_etag=etag,
    )
    if taken is None:
        settle_upload(job_repository().get(job_id, time.time()), key, etag)
    return taken is not None


def discard_late_source(job_id: str) -> None:
    """The source this run just wrote, for a job another run of the same upload queued: the same
    bytes, which inference reads and deletes once the job ends, unless the job has ended already."""
    if not needs_prepared_source(job_repository().get(job_id, time.time())):
        object_store().delete(prepared_key(job_id))


def hand_over(job_id: str, key: str) -> None:
    """Queue a job for inference, record that it was, then drop its upload."""
    job_queue().send(job_id)
    job_repository().mark_handed_over(job_id, time.time())
    object_store().delete(key)


def settle_upload(job: Job | None, key: str, etag: str) -> None:
    """An upload normalize does not work on now: it finishes the hand-over of a queued job whose
    worker was lost (resumes_hand_over), or it is discarded. In particular the upload URL, PUT
    again at any time, never queues a job twice."""
    if job is not None and resumes_hand_over(job, etag):
        logger.warning("resumed the hand-over of a queued job", extra={"job_id": job.job_id})
        hand_over(job.job_id, key)
        return
    discard_upload(job, key, etag)


def discard_upload(job: Job | None, key: str, etag: str) -> None:
    """Delete an upload its job does not take. While a retry of the job's own event may still read
    the job's upload under this same key, delete only if the key still holds this event's bytes:
    a later PUT has an event of its own. (AWS could make it one conditional delete, If-Match, but
    LocalStack 2026.3.0 does not implement that.)"""
    status = job.status if job else None
    if job is not None and needs_its_upload(job):
        try:
            current = object_store().etag(key)
        except ObjectMissing:
            current = None
        if current != etag:
            logger.info("nothing to delete: the upload was replaced since", extra={"job_id": job.job_id})
            return
    logger.warning("deleted an upload its job does not take", extra={"key": key, "status": status})
    object_store().delete(key)


def reject(job_id: str, key: str, rejection: JobRejected) -> None:
    """Fail the job with the reason, then delete the refused bytes: never retried."""
    failed = job_repository().transition(
        job_id, JobStatus.NORMALIZING, JobStatus.FAILED, time.time(), error=rejection.error
    )
    object_store().delete(key)
    logger.info(
        "upload rejected", extra={"job_id": job_id, "code": rejection.code.value, "failed_job": failed is not None}
    )
    metrics.add_metric(name="UploadsRejected", unit=MetricUnit.Count, value=1)


def give_up_on_upload(key: str, etag: str, attempts: int) -> None:
    """Lambda gave up on this upload's event. Its job is failed unless it went on without the event
    (handed over to inference, finished, or took another upload); then whatever the attempts
    left is deleted."""
    job_id = job_id_from_upload_key(key)
    if job_id is None:
        object_store().delete(key)
        return
    failed = job_repository().transition(
        job_id,
        NORMALIZE_GIVES_UP_ON,
        JobStatus.FAILED,
        time.time(),
        upload_etag=etag,
        before_hand_over=True,
        error=normalize_gave_up_error(attempts),
    )
    if failed is None:
        discard_upload(job_repository().get(job_id, time.time()), key, etag)
        return
    object_store().delete(prepared_key(job_id))
    object_store().delete(key)
    logger.warning("job failed: normalize gave up on its upload", extra={"job_id": job_id, "attempts": attempts})
    metrics.add_metric(name="UploadsGivenUp", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context) -> None:
    for record in event.records:
        # S3 URL-encodes keys in notifications, and Powertools' S3Object.key returns them as sent.
        normalize_upload(unquote_plus(record.s3.get_object.key), record.s3.get_object.etag)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def gave_up_handler(event: dict, context) -> None:
    """The on-failure destination of lambda_handler's asynchronous invocations: Lambda's record of
    an S3 event it gave up on (every attempt failed, or the event outlived its maximum age)."""
    logger.warning("normalize gave up on an event", extra={"request": event["requestContext"]})
    attempts = int(event["requestContext"]["approximateInvokeCount"])
    for record in S3Event(event["requestPayload"]).records:
        give_up_on_upload(unquote_plus(record.s3.get_object.key), record.s3.get_object.etag, attempts)
