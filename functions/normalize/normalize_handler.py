"""S3 ObjectCreated on uploads/ entry point: validate and prepare each upload, queue it for inference.

Every step is idempotent and every state change conditional, so a duplicate or retried event
either finishes what an earlier attempt left undone or finds nothing to do. A bad image ends
its job failed and is never retried; an AWS error propagates so Lambda's async retry applies.
"""

import time
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source

from cutout.errors import ErrorCode, JobRejected
from cutout.jobs import JobStatus
from cutout.keys import job_id_from_upload_key, prepared_key
from cutout_aws import ObjectMissing, ObjectTooLarge, job_queue, job_repository, object_store, settings
from normalize_image import prepare

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@tracer.capture_method
def normalize_upload(key: str) -> None:
    job_id = job_id_from_upload_key(key)
    if job_id is None:
        logger.warning("deleted an upload that belongs to no job", extra={"key": key})
        object_store().delete(key)
        return
    job = job_repository().transition(
        job_id, {JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING}, JobStatus.NORMALIZING, time.time()
    )
    if job is None:
        settle_upload_of_moved_job(job_id, key)
        return
    try:
        data = object_store().read(key, settings().max_upload_bytes)
        prepared = prepare(data, int(job["content_length"]), settings())
    except ObjectMissing:
        missing = "the uploaded image could not be found; please upload it again"
        reject(job_id, key, JobRejected(ErrorCode.UPLOAD_NOT_RECEIVED, missing))
        return
    except ObjectTooLarge as error:
        limit = settings().max_upload_bytes
        too_large = f"the upload is {error.size} bytes; the limit is {limit} bytes"
        reject(job_id, key, JobRejected(ErrorCode.TOO_LARGE, too_large, {"max_bytes": limit}))
        return
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
        # Another delivery of this event got there first and takes care of the rest.
        logger.info("job moved on while normalizing", extra={"job_id": job_id})
        return
    hand_over(job_id, key)
    logger.info(
        "upload normalized",
        extra={"job_id": job_id, "width": prepared.width, "height": prepared.height,
               "content_type": prepared.content_type, "reencoded": prepared.reencoded},
    )
    metrics.add_metric(name="UploadsNormalized", unit=MetricUnit.Count, value=1)


def hand_over(job_id: str, key: str) -> None:
    """Queue a job for inference, record that it was, then drop its upload."""
    job_queue().send(job_id)
    job_repository().mark_handed_over(job_id, time.time())
    object_store().delete(key)


def settle_upload_of_moved_job(job_id: str, key: str) -> None:
    """The job was not waiting for this upload. A queued job never recorded as handed over lost
    its worker between the transition and the hand-over, so it is handed over again (inference
    ignores a duplicate message). Any other upload is deleted: in particular the upload URL,
    PUT again while the job is queued, never queues the job twice."""
    job = job_repository().get(job_id, time.time())
    status = JobStatus(job["status"]) if job else None
    try:
        object_store().size(key)
    except ObjectMissing:
        logger.info("duplicate event for a handled upload", extra={"job_id": job_id, "status": status})
        return
    if status is JobStatus.QUEUED and "handed_over_at" not in job:
        logger.warning("resumed the hand-over of a queued job", extra={"job_id": job_id})
        hand_over(job_id, key)
        return
    logger.warning("deleted an upload its job no longer takes", extra={"job_id": job_id, "status": status})
    object_store().delete(key)


def reject(job_id: str, key: str, rejection: JobRejected) -> None:
    """Fail the job with the reason, then delete the refused bytes: never retried."""
    failed = job_repository().transition(
        job_id, JobStatus.NORMALIZING, JobStatus.FAILED, time.time(), error=rejection.as_dict()
    )
    object_store().delete(key)
    logger.info(
        "upload rejected", extra={"job_id": job_id, "code": rejection.code.value, "failed_job": failed is not None}
    )
    metrics.add_metric(name="UploadsRejected", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context) -> None:
    for record in event.records:
        # S3 URL-encodes keys in notifications, and Powertools' S3Object.key returns them as sent.
        normalize_upload(unquote_plus(record.s3.get_object.key))
