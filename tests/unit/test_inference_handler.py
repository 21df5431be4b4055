"""The inference handler against moto's S3 and DynamoDB, running the real model."""

import io
import json
import logging
import time
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from PIL import Image

from cutout.jobs import JobStatus, ResultFile
from cutout.keys import prepared_key, result_key
from cutout.models import DEFAULT_MODEL
from cutout.output import OutputFormat, OutputOptions, SubjectBox
from cutout.settings import Settings
from tests.support.inference import job_message, queue_job, sqs_event

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"


def failed_message_ids(response: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def photo(name: str) -> bytes:
    return (DATA / f"{name}.png").read_bytes()


def test_a_batch_reports_only_the_message_that_can_be_retried(aws, inference, lambda_context):
    png = queue_job(aws.jobs, aws.store, photo("coffee"), OutputOptions(OutputFormat.PNG))
    webp = queue_job(aws.jobs, aws.store, photo("chelsea"), OutputOptions(OutputFormat.WEBP))
    mask = queue_job(aws.jobs, aws.store, photo("astronaut"), OutputOptions(OutputFormat.MASK))
    corrupt = queue_job(aws.jobs, aws.store, b"\x89PNG\r\n\x1a\n not really")
    event = sqs_event(job_message(png), job_message(webp), ("not json", 1), job_message(mask), job_message(corrupt))

    response = inference(event, lambda_context)

    assert failed_message_ids(response) == ["message-2"]
    for job_id, output_format, size, subject in (
        (png, OutputFormat.PNG, (600, 400), SubjectBox(76, 17, 404, 374)),
        (webp, OutputFormat.WEBP, (451, 300), SubjectBox(0, 0, 402, 300)),
        (mask, OutputFormat.MASK, (512, 512), SubjectBox(0, 15, 512, 497)),
    ):
        job = aws.jobs.get(job_id, time.time())
        assert job.status == "succeeded"
        stored = aws.s3.get_object(Bucket=aws.bucket_name, Key=result_key(job_id, output_format.extension))
        body = stored["Body"].read()
        assert stored["ContentType"] == output_format.content_type == job.result.content_type
        assert job.result == ResultFile(
            output_format, output_format.content_type, *size, len(body), subject, DEFAULT_MODEL
        )
        assert Image.open(io.BytesIO(body)).size == size
        assert 0 < job.result_expires_at - time.time() <= Settings().result_ttl_s
        assert {"processing", "succeeded"} <= set(job.stages)
    failed = aws.jobs.get(corrupt, time.time())
    assert failed.status == "failed" and failed.error.code == "corrupt_image"
    # Every job that ended here lost its source, the corrupt one's included.
    assert not [key for key in aws.object_keys() if key.startswith("prepared/")]


def test_a_redelivered_message_for_a_finished_job_does_nothing(aws, inference, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, photo("chelsea"))
    assert inference(sqs_event(job_message(job_id)), lambda_context)["batchItemFailures"] == []
    finished = aws.jobs.get(job_id, time.time())
    result_before = aws.s3.head_object(Bucket=aws.bucket_name, Key=result_key(job_id, "png"))["LastModified"]

    assert inference(sqs_event(job_message(job_id, receive_count=2)), lambda_context)["batchItemFailures"] == []
    assert aws.jobs.get(job_id, time.time()) == finished
    assert aws.s3.head_object(Bucket=aws.bucket_name, Key=result_key(job_id, "png"))["LastModified"] == result_before


def test_a_throttled_table_is_retried_not_lost(aws, inference, lambda_context, throttle_dynamodb):
    job_id = queue_job(aws.jobs, aws.store, photo("chelsea"))
    throttle_dynamodb("UpdateItem", times=1)

    with pytest.raises(BatchProcessingError):
        inference(sqs_event(job_message(job_id, 1)), lambda_context)
    assert aws.jobs.get(job_id, time.time()).status == "queued"
    assert aws.object_keys() == [prepared_key(job_id)]

    assert inference(sqs_event(job_message(job_id, 2)), lambda_context)["batchItemFailures"] == []
    assert aws.jobs.get(job_id, time.time()).status == "succeeded"
    assert aws.object_keys() == [result_key(job_id, "png")]


def test_a_job_cancelled_while_queued_is_never_processed_and_loses_its_source(aws, inference, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, photo("chelsea"))
    aws.jobs.transition(job_id, JobStatus.QUEUED, JobStatus.CANCELLED, time.time())

    assert inference(sqs_event(job_message(job_id)), lambda_context)["batchItemFailures"] == []
    assert aws.jobs.get(job_id, time.time()).status == "cancelled"
    assert aws.object_keys() == []


def test_a_job_left_processing_by_a_crashed_worker_resumes_on_redelivery(aws, inference, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, photo("coffee"))
    first_entry = aws.jobs.transition(job_id, JobStatus.QUEUED, JobStatus.PROCESSING, time.time()).stages

    assert inference(sqs_event(job_message(job_id, receive_count=2)), lambda_context)["batchItemFailures"] == []
    job = aws.jobs.get(job_id, time.time())
    assert job.status == "succeeded"
    assert job.processing_attempt == 2
    # The stage keeps when it was first entered, so the stages stay in the order the job went through them.
    assert job.stages["processing"] == first_entry["processing"]
    times = [job.stages[stage] for stage in ("awaiting_upload", "normalizing", "queued", "processing", "succeeded")]
    assert times == sorted(times)


def test_a_job_without_its_prepared_source_fails_at_once(aws, inference, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, prepared=None)

    assert inference(sqs_event(job_message(job_id)), lambda_context)["batchItemFailures"] == []
    job = aws.jobs.get(job_id, time.time())
    assert (job.status, job.error.code) == ("failed", "source_missing")


def test_a_transient_error_is_retried_and_fails_the_job_on_the_last_attempt(aws, inference, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, prepared=None)
    # With the bucket gone every S3 call errors: not the job's fault, so SQS should retry it.
    aws.s3.delete_bucket(Bucket=aws.bucket_name)
    last_attempt = Settings.from_env().max_receive_count

    # A batch whose every record failed fails the invocation, so SQS redelivers it whole.
    with pytest.raises(BatchProcessingError):
        inference(sqs_event(job_message(job_id, 1)), lambda_context)
    assert aws.jobs.get(job_id, time.time()).status == "processing"

    with pytest.raises(BatchProcessingError):
        inference(sqs_event(job_message(job_id, last_attempt)), lambda_context)
    job = aws.jobs.get(job_id, time.time())
    assert (job.status, job.error.code) == ("failed", "retries_exhausted")


def test_a_failed_attempt_is_logged_with_its_job_and_error(aws, inference, lambda_context):
    from cutout_inference import handler as inference_handler

    job_id = queue_job(aws.jobs, aws.store, prepared=None)
    aws.s3.delete_bucket(Bucket=aws.bucket_name)
    lines = io.StringIO()
    capture = logging.StreamHandler(lines)
    capture.setFormatter(inference_handler.logger.registered_formatter)
    inference_handler.logger.addHandler(capture)
    try:
        with pytest.raises(BatchProcessingError):
            inference(sqs_event(job_message(job_id, 1)), lambda_context)
    finally:
        inference_handler.logger.removeHandler(capture)

    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert any(r.get("job_id") == job_id and "NoSuchBucket" in r.get("exception", "") for r in records), records


def test_the_job_gets_the_result_its_output_options_ask_for(aws, inference, lambda_context):
    output = OutputOptions.from_request({"format": "jpeg", "crop": True, "crop_margin": "10%", "max_side": 245})
    job_id = queue_job(aws.jobs, aws.store, photo("coffee"), output)

    assert inference(sqs_event(job_message(job_id)), lambda_context)["batchItemFailures"] == []

    job = aws.jobs.get(job_id, time.time())
    stored = aws.s3.get_object(Bucket=aws.bucket_name, Key=result_key(job_id, "jpg"))
    image = Image.open(io.BytesIO(stored["Body"].read()))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (245, 230))
    assert stored["ContentType"] == "image/jpeg"
    # Cropped to the cup (404x374) plus 41 px, then scaled to 245 px wide.
    assert job.result == ResultFile(
        OutputFormat.JPEG, "image/jpeg", 245, 230, stored["ContentLength"], SubjectBox(20, 20, 205, 190), DEFAULT_MODEL
    )
