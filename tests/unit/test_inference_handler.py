"""The inference handler against moto's S3 and DynamoDB, running the real model."""

import io
import json
import logging
import os
import time
import uuid
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from PIL import Image

from cutout.jobs import JobRequest, JobStatus, OutputFormat, new_job
from cutout.keys import prepared_key, result_key
from cutout.settings import Settings
from cutout_aws import JobRepository, ObjectStore

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:cutout-inference"


def queue_job(jobs: JobRepository, store: ObjectStore, prepared: bytes | None, output_format=OutputFormat.PNG) -> str:
    """A job as normalize leaves it: queued, with its prepared source in the bucket."""
    job_id, now = str(uuid.uuid4()), time.time()
    jobs.create(new_job(job_id, JobRequest("image/png", 1000, output_format), Settings(), now))
    jobs.transition(job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, now)
    jobs.transition(job_id, JobStatus.NORMALIZING, JobStatus.QUEUED, now)
    if prepared is not None:
        store.write(prepared_key(job_id), prepared, "image/png")
    return job_id


def sqs_event(*messages: tuple[str, int]) -> dict:
    """An SQS batch as Lambda delivers it: (body, ApproximateReceiveCount) per record."""
    return {
        "Records": [
            {
                "messageId": f"message-{index}",
                "receiptHandle": f"handle-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(count), "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
            for index, (body, count) in enumerate(messages)
        ]
    }


def job_message(job_id: str, receive_count: int = 1) -> tuple[str, int]:
    return json.dumps({"job_id": job_id}), receive_count


def failed_message_ids(response: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


@pytest.fixture(scope="module")
def handler(request):
    from test_inference_engine import fetch_model, U2NETP

    os.environ["CUTOUT_MODEL_DIR"] = str(fetch_model.provision(U2NETP, fetch_model.default_dest(), "pypi").parent)
    import inference_handler

    return inference_handler.lambda_handler


def photo(name: str) -> bytes:
    return (DATA / f"{name}.png").read_bytes()


def test_a_batch_reports_only_the_message_that_can_be_retried(aws, handler, lambda_context):
    png = queue_job(aws.jobs, aws.store, photo("coffee"), OutputFormat.PNG)
    webp = queue_job(aws.jobs, aws.store, photo("chelsea"), OutputFormat.WEBP)
    mask = queue_job(aws.jobs, aws.store, photo("astronaut"), OutputFormat.MASK)
    corrupt = queue_job(aws.jobs, aws.store, b"\x89PNG\r\n\x1a\n not really")
    event = sqs_event(job_message(png), job_message(webp), ("not json", 1), job_message(mask), job_message(corrupt))

    response = handler(event, lambda_context)

    assert failed_message_ids(response) == ["message-2"]
    for job_id, output_format, size in (
        (png, OutputFormat.PNG, (600, 400)),
        (webp, OutputFormat.WEBP, (451, 300)),
        (mask, OutputFormat.MASK, (512, 512)),
    ):
        job = aws.jobs.get(job_id, time.time())
        assert job["status"] == "succeeded"
        stored = aws.s3.get_object(Bucket=aws.bucket_name, Key=result_key(job_id, output_format.extension))
        body = stored["Body"].read()
        assert stored["ContentType"] == output_format.content_type == job["result"]["content_type"]
        assert job["result"] == {
            "format": output_format.value,
            "content_type": output_format.content_type,
            "bytes": len(body),
            "width": size[0],
            "height": size[1],
        }
        assert Image.open(io.BytesIO(body)).size == size
        assert 0 < job["result_expires_at"] - time.time() <= Settings().result_ttl_s
        assert {"processing", "succeeded"} <= set(job["stages"])
    failed = aws.jobs.get(corrupt, time.time())
    assert failed["status"] == "failed" and failed["error"]["code"] == "corrupt_image"
    # Every job that ended here lost its source, the corrupt one's included.
    assert not [key for key in aws.object_keys() if key.startswith("prepared/")]


def test_a_redelivered_message_for_a_finished_job_does_nothing(aws, handler, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, photo("chelsea"))
    assert handler(sqs_event(job_message(job_id)), lambda_context)["batchItemFailures"] == []
    finished = aws.jobs.get(job_id, time.time())
    result_before = aws.s3.head_object(Bucket=aws.bucket_name, Key=result_key(job_id, "png"))["LastModified"]

    assert handler(sqs_event(job_message(job_id, receive_count=2)), lambda_context)["batchItemFailures"] == []
    assert aws.jobs.get(job_id, time.time()) == finished
    assert aws.s3.head_object(Bucket=aws.bucket_name, Key=result_key(job_id, "png"))["LastModified"] == result_before


def test_a_throttled_table_is_retried_not_lost(aws, handler, lambda_context, throttle_dynamodb):
    job_id = queue_job(aws.jobs, aws.store, photo("chelsea"))
    throttle_dynamodb("UpdateItem", times=1)

    with pytest.raises(BatchProcessingError):
        handler(sqs_event(job_message(job_id, 1)), lambda_context)
    assert aws.jobs.get(job_id, time.time())["status"] == "queued"
    assert aws.object_keys() == [prepared_key(job_id)]

    assert handler(sqs_event(job_message(job_id, 2)), lambda_context)["batchItemFailures"] == []
    assert aws.jobs.get(job_id, time.time())["status"] == "succeeded"
    assert aws.object_keys() == [result_key(job_id, "png")]


def test_a_job_cancelled_while_queued_is_never_processed_and_loses_its_source(aws, handler, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, photo("chelsea"))
    aws.jobs.transition(job_id, JobStatus.QUEUED, JobStatus.CANCELLED, time.time())

    assert handler(sqs_event(job_message(job_id)), lambda_context)["batchItemFailures"] == []
    assert aws.jobs.get(job_id, time.time())["status"] == "cancelled"
    assert aws.object_keys() == []


def test_a_job_left_processing_by_a_crashed_worker_resumes_on_redelivery(aws, handler, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, photo("coffee"))
    aws.jobs.transition(job_id, JobStatus.QUEUED, JobStatus.PROCESSING, time.time())

    assert handler(sqs_event(job_message(job_id, receive_count=2)), lambda_context)["batchItemFailures"] == []
    assert aws.jobs.get(job_id, time.time())["status"] == "succeeded"


def test_a_job_without_its_prepared_source_fails_at_once(aws, handler, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, prepared=None)

    assert handler(sqs_event(job_message(job_id)), lambda_context)["batchItemFailures"] == []
    job = aws.jobs.get(job_id, time.time())
    assert (job["status"], job["error"]["code"]) == ("failed", "source_missing")


def test_a_transient_error_is_retried_and_fails_the_job_on_the_last_attempt(aws, handler, lambda_context):
    job_id = queue_job(aws.jobs, aws.store, prepared=None)
    # With the bucket gone every S3 call errors: not the job's fault, so SQS should retry it.
    aws.s3.delete_bucket(Bucket=aws.bucket_name)
    last_attempt = Settings.from_env().max_receive_count

    # A batch whose every record failed fails the invocation, so SQS redelivers it whole.
    with pytest.raises(BatchProcessingError):
        handler(sqs_event(job_message(job_id, 1)), lambda_context)
    assert aws.jobs.get(job_id, time.time())["status"] == "processing"

    with pytest.raises(BatchProcessingError):
        handler(sqs_event(job_message(job_id, last_attempt)), lambda_context)
    job = aws.jobs.get(job_id, time.time())
    assert (job["status"], job["error"]["code"]) == ("failed", "retries_exhausted")


def test_a_failed_attempt_is_logged_with_its_job_and_error(aws, handler, lambda_context):
    import inference_handler

    job_id = queue_job(aws.jobs, aws.store, prepared=None)
    aws.s3.delete_bucket(Bucket=aws.bucket_name)
    lines = io.StringIO()
    capture = logging.StreamHandler(lines)
    capture.setFormatter(inference_handler.logger.registered_formatter)
    inference_handler.logger.addHandler(capture)
    try:
        with pytest.raises(BatchProcessingError):
            handler(sqs_event(job_message(job_id, 1)), lambda_context)
    finally:
        inference_handler.logger.removeHandler(capture)

    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert any(r.get("job_id") == job_id and "NoSuchBucket" in r.get("exception", "") for r in records), records
