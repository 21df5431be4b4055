"""SQS entry point of the inference stage: cut out each queued job's prepared image.

Per message: move the job queued → processing (or re-enter processing after a crash), read
prepared/<job_id>, remove the background, write results/<job_id>.<ext>, mark the job
succeeded, then delete the prepared source. Succeeding before deleting means a missing
source can only mean a job that never had one, and a crash in between leaves only an
intermediate for the bucket's lifecycle rule, never a job stuck without its input. Whatever
way a job ends here (succeeded, failed, or found cancelled), its prepared source is deleted.

A bad image fails its job at once. Any other error is reported as a batch item failure so
SQS redelivers only that message; on the last allowed receive the job is failed first, so
no job waits in processing for a worker that will not come back.
"""

import time
from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from cutout.aws import ObjectMissing, ObjectTooLarge, job_repository, object_store, settings
from cutout.errors import ErrorCode, ErrorDetail, JobRejected
from cutout.jobs import Job, JobStatus, ResultFile, is_last_attempt, prepared_byte_limit
from cutout.keys import job_id_in_message, prepared_key, result_key
from cutout_inference.engine import BackgroundRemover, UnreadableImageError

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# Given the logger, the processor logs each failed record with its traceback and the job's keys:
# otherwise a message that ends in the dead-letter queue leaves no trace of why.
processor = BatchProcessor(event_type=EventType.SQS, logger=logger)


def job_id_of(record: SQSRecord) -> str:
    try:
        return job_id_in_message(record.body)
    except ValueError as error:
        raise ValueError(f"message {record.message_id}: {error}") from error


@tracer.capture_method
def infer(job: Job) -> ResultFile:
    """Write the job's result and return what the job records of it, or raise JobRejected."""
    try:
        source = object_store().read(prepared_key(job.job_id), prepared_byte_limit(settings()))
    except ObjectMissing:
        raise JobRejected(ErrorCode.SOURCE_MISSING, "the prepared image is gone; please submit the job again") from None
    except ObjectTooLarge as error:
        raise JobRejected(ErrorCode.TOO_LARGE, f"the prepared image is {error.size} bytes") from error
    try:
        remover = BackgroundRemover.for_model(job.model, settings().cutout_model_dir)
        cutout = remover.remove_background(source, job.output)
    except UnreadableImageError as error:
        raise JobRejected(ErrorCode.CORRUPT_IMAGE, str(error)) from error
    object_store().write(result_key(job.job_id, job.output_format.extension), cutout.body, cutout.content_type)
    return ResultFile(
        format=job.output_format,
        content_type=cutout.content_type,
        width=cutout.width,
        height=cutout.height,
        bytes=cutout.size_bytes,
        subject=cutout.subject,
        model=job.model,
    )


def discard_source(job_id: str) -> None:
    object_store().delete(prepared_key(job_id))


def fail(job_id: str, error: ErrorDetail) -> None:
    failed = job_repository().transition(job_id, JobStatus.PROCESSING, JobStatus.FAILED, time.time(), error=error)
    discard_source(job_id)
    logger.warning("job failed", extra={"error": asdict(error), "recorded": failed is not None})
    metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)


def process_record(record: SQSRecord) -> None:
    job_id = job_id_of(record)
    receive_count = int(record.attributes.approximate_receive_count)
    logger.append_keys(job_id=job_id, receive_count=receive_count)
    started = time.time()
    resumes = {JobStatus.QUEUED, JobStatus.PROCESSING}
    job = job_repository().transition(job_id, resumes, JobStatus.PROCESSING, started, processing_attempt=receive_count)
    if job is None:
        # Only a job that is queued or processing needs its source: a cancelled one never will.
        discard_source(job_id)
        logger.info("nothing to do: the job is finished, cancelled, expired or unknown")
        return
    try:
        result = infer(job)
        now = time.time()
        succeeded = job_repository().transition(
            job_id,
            JobStatus.PROCESSING,
            JobStatus.SUCCEEDED,
            now,
            result=result,
            result_expires_at=int(now + settings().result_ttl_s),
        )
    except JobRejected as rejection:
        fail(job_id, rejection.error)
        return
    except Exception as error:
        # Recording the success is part of the attempt: if even that fails on the last
        # receive, the job is failed rather than left processing.
        if is_last_attempt(receive_count, settings()):
            message = f"processing failed {receive_count} times; last error: {type(error).__name__}"
            fail(job_id, ErrorDetail(ErrorCode.RETRIES_EXHAUSTED, message))
        raise
    discard_source(job_id)
    logger.info("job succeeded", extra={"result": asdict(result), "recorded": succeeded is not None})
    metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="InferenceSeconds", unit=MetricUnit.Seconds, value=now - started)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=process_record, processor=processor, context=context)
