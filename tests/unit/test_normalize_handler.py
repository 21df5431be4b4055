"""The normalize function through real S3 event notifications, against moto."""

import io
import json
import time
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError
from PIL import Image

import cutout.aws
from cutout.jobs import TTL_ATTRIBUTE, JobRequest, JobStatus, new_job
from cutout.keys import new_job_id, prepared_key, result_key, upload_key
from cutout.settings import Settings
from cutout_normalize import handler as normalize_handler
from tests.support.hostile_images import CASES, CASES_BY_NAME, Case, encoded, photo
from tests.support.inference import job_message, sqs_event

GOOD = CASES_BY_NAME["photo-jpeg"]
BAD = CASES_BY_NAME["random-bytes"]


def s3_event(bucket: str, *objects: tuple[str, str]) -> dict:
    """An ObjectCreated notification as S3 sends it: one record per (key, ETag), the key URL-encoded."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-02T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": 1, "eTag": etag, "sequencer": "0"},
                },
            }
            for key, etag in objects
        ]
    }


def gave_up_record(event: dict, attempts: int = 3) -> dict:
    """What Lambda sends an asynchronous invocation's on-failure destination once it gives up on an event."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-02T10:03:00.000Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-4b52-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:cutout-normalize:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "ClientError", "errorMessage": "An error occurred", "stackTrace": []},
    }


def etag_of(aws, key: str) -> str:
    return aws.s3.head_object(Bucket=aws.bucket_name, Key=key)["ETag"].strip('"')


def event_for(aws, *objects) -> dict:
    """The event S3 sends for the objects now under these keys; a (key, ETag) pair names one gone since."""
    pairs = [item if isinstance(item, tuple) else (item, etag_of(aws, item)) for item in objects]
    return s3_event(aws.bucket_name, *pairs)


@pytest.fixture
def normalize(aws, lambda_context):
    """Deliver the S3 event for these objects to the handler, as Lambda would."""
    return lambda *objects: normalize_handler.lambda_handler(event_for(aws, *objects), lambda_context)


@pytest.fixture
def give_up(aws, lambda_context):
    """Deliver to the on-failure destination the event of these objects, as Lambda does after its last retry."""
    return lambda *objects: normalize_handler.gave_up_handler(gave_up_record(event_for(aws, *objects)), lambda_context)


@pytest.fixture
def infer_queued(aws, inference, lambda_context):
    """Hand every message waiting in the queue to the real inference function, as its event source would."""

    def drain():
        while messages := aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            inference(sqs_event(*(job_message(json.loads(m["Body"])["job_id"]) for m in messages)), lambda_context)
            for message in messages:
                aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])

    return drain


def submit(aws, case: Case) -> str:
    """Create the job the API would create for this case, and upload the case's bytes."""
    request = JobRequest(content_type=case.content_type, content_length=case.content_length, filename=case.filename)
    job = new_job(new_job_id(), request, Settings.from_env(), time.time())
    aws.jobs.create(job)
    aws.store.write(job.upload_key, case.body, case.content_type)
    return job.job_id


def jpeg_photos(*sizes: tuple[int, int]) -> list[bytes]:
    """One photo at each size, padded after the end-of-image marker to one length: what a client
    may PUT again through the same upload URL, which signs the length and type only."""
    images = [encoded(photo("chelsea", size), "JPEG", quality=90) for size in sizes]
    length = max(map(len, images))
    return [image + bytes(length - len(image)) for image in images]


def prepared_size(aws, job_id: str) -> tuple[int, int]:
    stored = aws.s3.get_object(Bucket=aws.bucket_name, Key=prepared_key(job_id))
    return Image.open(io.BytesIO(stored["Body"].read())).size


def job_of(aws, job_id: str) -> dict:
    return aws.jobs.get(job_id, time.time())


def all_queued_job_ids(aws) -> list[str]:
    received, batch = [], aws.queued_job_ids()
    while batch:
        received += batch
        batch = aws.queued_job_ids()
    return received


def outcome_problems(aws, case: Case, job_id: str, queued: list[str]) -> list[str]:
    """What differs from the case's expected outcome, in words; nothing when all is as owed."""
    job, keys = job_of(aws, job_id), aws.object_keys()
    problems = []
    if upload_key(job_id) in keys:
        problems.append("the upload was not deleted")
    if case.error:
        if (job.status, job.error and job.error.code) != (JobStatus.FAILED, case.error):
            problems.append(f"job is {job.status} with {job.error}, not failed with {case.error}")
        if not (job.error and job.error.message):
            problems.append("no message for the user")
        if prepared_key(job_id) in keys or job_id in queued:
            problems.append("a rejected upload was prepared or queued")
        return problems
    recorded = (job.status, job.width, job.height, job.prepared_content_type)
    if recorded != (JobStatus.QUEUED, *case.prepared):
        problems.append(f"job records {recorded}, expected queued with {case.prepared}")
    if queued.count(job_id) != 1:
        problems.append(f"{queued.count(job_id)} messages sent")
    if prepared_key(job_id) not in keys:
        return [*problems, "no prepared image"]
    stored = aws.s3.get_object(Bucket=aws.bucket_name, Key=prepared_key(job_id))
    size = Image.open(io.BytesIO(stored["Body"].read())).size
    if (*size, stored["ContentType"]) != case.prepared:
        problems.append(f"prepared image is {size} {stored['ContentType']}, expected {case.prepared}")
    return problems


def test_the_whole_corpus_in_one_event_gets_each_outcome(aws, normalize):
    """One moto session for every case keeps this fast; test_normalize_image checks each case alone."""
    job_ids = {case.name: submit(aws, case) for case in CASES}

    normalize(*(upload_key(job_id) for job_id in job_ids.values()))

    queued = all_queued_job_ids(aws)
    problems = {case.name: outcome_problems(aws, case, job_ids[case.name], queued) for case in CASES}
    assert {name: found for name, found in problems.items() if found} == {}
    assert len(queued) == sum(1 for case in CASES if not case.error)


@pytest.mark.parametrize("key", ["uploads/not-a-job id.jpg", f"uploads/{new_job_id()}"])
def test_an_upload_without_a_job_is_deleted(key, aws, normalize):
    aws.store.write(key, GOOD.body, "image/jpeg")

    normalize(key)

    assert aws.object_keys() == []
    assert aws.queued_job_ids() == []


def test_an_upload_of_an_expired_job_is_deleted(aws, normalize):
    job_id = submit(aws, GOOD)
    aws.overwrite(job_id, TTL_ATTRIBUTE, int(time.time()) - 1)

    normalize(upload_key(job_id))

    assert aws.object_keys() == []
    assert aws.queued_job_ids() == []


@pytest.mark.parametrize("final", [JobStatus.CANCELLED, JobStatus.EXPIRED])
def test_an_upload_of_a_finished_job_is_deleted_and_the_job_untouched(final, aws, normalize):
    job_id = submit(aws, GOOD)
    aws.jobs.transition(job_id, JobStatus.AWAITING_UPLOAD, final, time.time())

    normalize(upload_key(job_id))

    assert job_of(aws, job_id).status == final
    assert aws.object_keys() == []
    assert aws.queued_job_ids() == []


def test_a_duplicate_event_changes_nothing(aws, normalize):
    job_id = submit(aws, GOOD)
    upload = (upload_key(job_id), etag_of(aws, upload_key(job_id)))
    normalize(upload)
    first = job_of(aws, job_id)
    assert aws.queued_job_ids() == [job_id]

    normalize(upload)

    assert job_of(aws, job_id) == first
    assert aws.object_keys() == [prepared_key(job_id)]
    assert aws.queued_job_ids() == []


def test_the_upload_url_put_again_while_queued_never_queues_the_job_twice(aws, normalize):
    job_id = submit(aws, GOOD)
    normalize(upload_key(job_id))
    assert aws.queued_job_ids() == [job_id]
    queued = job_of(aws, job_id)
    assert queued.status == JobStatus.QUEUED and queued.handed_over_at is not None

    aws.store.write(upload_key(job_id), GOOD.body, GOOD.content_type)
    normalize(upload_key(job_id))

    assert job_of(aws, job_id) == queued
    assert aws.object_keys() == [prepared_key(job_id)]
    assert aws.queued_job_ids() == []


def test_a_retried_event_finishes_a_job_left_normalizing(aws, normalize):
    job_id = submit(aws, GOOD)
    # What the run that died had recorded: it took this upload.
    aws.jobs.transition(
        job_id,
        JobStatus.AWAITING_UPLOAD,
        JobStatus.NORMALIZING,
        time.time(),
        upload_etag=etag_of(aws, upload_key(job_id)),
    )

    normalize(upload_key(job_id))

    assert job_of(aws, job_id).status == JobStatus.QUEUED
    assert aws.object_keys() == [prepared_key(job_id)]
    assert aws.queued_job_ids() == [job_id]


def test_an_aws_error_propagates_and_the_retry_completes_the_hand_over(aws, normalize):
    job_id = submit(aws, GOOD)
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)

    with pytest.raises(ClientError):
        normalize(upload_key(job_id))

    assert job_of(aws, job_id).status == JobStatus.QUEUED
    assert aws.object_keys() == [prepared_key(job_id), upload_key(job_id)]
    aws.sqs.create_queue(QueueName=aws.queue_url.rsplit("/", 1)[1])

    normalize(upload_key(job_id))

    assert aws.object_keys() == [prepared_key(job_id)]
    assert aws.queued_job_ids() == [job_id]


def test_a_throttled_table_fails_the_invocation_and_the_retry_completes(aws, normalize, throttle_dynamodb):
    job_id = submit(aws, GOOD)
    throttle_dynamodb("UpdateItem", times=1)

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        normalize(upload_key(job_id))
    assert job_of(aws, job_id).status == JobStatus.AWAITING_UPLOAD
    assert aws.object_keys() == [upload_key(job_id)]

    normalize(upload_key(job_id))

    assert job_of(aws, job_id).status == JobStatus.QUEUED
    assert aws.object_keys() == [prepared_key(job_id)]
    assert aws.queued_job_ids() == [job_id]


def test_a_leftover_upload_of_a_job_past_queued_is_deleted_without_a_message(aws, normalize):
    job_id = submit(aws, GOOD)
    normalize(upload_key(job_id))
    aws.queued_job_ids()
    aws.jobs.transition(job_id, JobStatus.QUEUED, JobStatus.PROCESSING, time.time())
    aws.store.write(upload_key(job_id), GOOD.body, "image/jpeg")

    normalize(upload_key(job_id))

    assert job_of(aws, job_id).status == JobStatus.PROCESSING
    assert aws.object_keys() == [prepared_key(job_id)]
    assert aws.queued_job_ids() == []


def test_an_event_whose_upload_is_gone_leaves_the_job_awaiting_one(aws, normalize):
    job_id = submit(aws, GOOD)
    gone = (upload_key(job_id), etag_of(aws, upload_key(job_id)))
    aws.store.delete(upload_key(job_id))

    normalize(gone)

    assert job_of(aws, job_id).status == JobStatus.AWAITING_UPLOAD
    aws.store.write(upload_key(job_id), GOOD.body, GOOD.content_type)
    normalize(upload_key(job_id))
    assert job_of(aws, job_id).status == JobStatus.QUEUED


def test_one_bad_record_in_a_batch_fails_only_its_job(aws, normalize):
    first, bad, last = submit(aws, GOOD), submit(aws, BAD), submit(aws, CASES_BY_NAME["photo-png"])

    normalize(upload_key(first), upload_key(bad), upload_key(last))

    assert [job_of(aws, job_id).status for job_id in (first, bad, last)] == ["queued", "failed", "queued"]
    assert sorted(aws.queued_job_ids()) == sorted([first, last])
    assert aws.object_keys() == sorted([prepared_key(first), prepared_key(last)])


def test_the_output_side_limit_comes_from_the_environment(aws, normalize, monkeypatch):
    monkeypatch.setenv("MAX_OUTPUT_SIDE", "120")
    job_id = submit(aws, CASES_BY_NAME["exif-orientation-6"])

    normalize(upload_key(job_id))

    job = job_of(aws, job_id)
    assert (job.width, job.height) == (120, 80)


def test_a_rejected_job_reads_failed_through_the_stored_item(aws, normalize):
    job_id = submit(aws, CASES_BY_NAME["png-pixel-bomb"])

    normalize(upload_key(job_id))

    item = aws.stored_item(job_id)
    assert item["error"]["details"] == {"max_pixels": Settings().max_input_pixels}
    assert JobStatus.FAILED in item["stages"] and JobStatus.NORMALIZING in item["stages"]


def test_a_reupload_while_normalizing_is_deleted_and_the_job_keeps_its_first_upload(aws, normalize, interleave):
    first, other = jpeg_photos((64, 64), (640, 480))
    job_id = submit(aws, Case("first", first, "image/jpeg"))
    key = upload_key(job_id)

    def put_again_and_notify():
        aws.store.write(key, other, "image/jpeg")
        normalize(key)

    # The URL is PUT again with other bytes of the signed length while the first upload is being
    # normalized: right before that run moves the job on to queued (its second table write).
    interleave("dynamodb.UpdateItem", 2, put_again_and_notify)
    normalize(key)

    job = job_of(aws, job_id)
    assert (job.status, job.width, job.height) == (JobStatus.QUEUED, 64, 64)
    assert aws.object_keys() == [prepared_key(job_id)], "the second upload is deleted"
    assert prepared_size(aws, job_id) == (64, 64), "the prepared source is the first upload's"
    assert all_queued_job_ids(aws) == [job_id]


def test_a_run_that_loses_to_a_duplicate_event_leaves_nothing_behind(aws, normalize, interleave, infer_queued):
    job_id = submit(aws, GOOD)
    key = upload_key(job_id)

    def duplicate_delivered_and_job_done():
        normalize(key)
        infer_queued()

    # A duplicate of the event runs to the end, inference included, while the first run is about
    # to write its prepared source (its first object write).
    interleave("s3.PutObject", 1, duplicate_delivered_and_job_done)
    normalize(key)
    infer_queued()

    assert job_of(aws, job_id).status == JobStatus.SUCCEEDED
    assert aws.object_keys() == [result_key(job_id, "png")]


def test_a_retry_never_reads_other_bytes_than_the_upload_its_job_took(aws, normalize, give_up):
    first, other = jpeg_photos((64, 64), (640, 480))
    job_id = submit(aws, Case("first", first, "image/jpeg"))
    key = upload_key(job_id)
    took = (key, etag_of(aws, key))
    # The run that took the first upload died; then the URL was PUT again.
    aws.jobs.transition(job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, time.time(), upload_etag=took[1])
    aws.store.write(key, other, "image/jpeg")

    with pytest.raises(cutout.aws.ObjectReplaced):
        normalize(took)
    normalize(key)
    give_up(took)

    job = job_of(aws, job_id)
    assert (job.status, job.error.code) == (JobStatus.FAILED, "retries_exhausted")
    assert job.width is None
    assert aws.object_keys() == []
    assert aws.queued_job_ids() == []


def test_giving_up_fails_a_job_queued_but_never_handed_over_and_deletes_its_objects(aws, normalize, give_up):
    job_id = submit(aws, GOOD)
    key = upload_key(job_id)
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)
    for _ in range(3):
        with pytest.raises(ClientError):
            normalize(key)
    assert job_of(aws, job_id).status == JobStatus.QUEUED

    give_up(key)

    job = job_of(aws, job_id)
    assert (job.status, job.error.code) == (JobStatus.FAILED, "retries_exhausted")
    assert "could not be processed" in job.error.message
    assert aws.object_keys() == []


def test_giving_up_fails_a_job_whose_upload_was_never_taken(aws, normalize, give_up, throttle_dynamodb):
    job_id = submit(aws, GOOD)
    throttle_dynamodb("UpdateItem", times=3)
    for _ in range(3):
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            normalize(upload_key(job_id))
    assert job_of(aws, job_id).status == JobStatus.AWAITING_UPLOAD

    give_up(upload_key(job_id))

    assert job_of(aws, job_id).error.code == "retries_exhausted"
    assert aws.object_keys() == []


def test_giving_up_on_another_upload_leaves_the_job_alone(aws, normalize, give_up):
    job_id = submit(aws, GOOD)
    normalize(upload_key(job_id))
    queued = job_of(aws, job_id)
    aws.store.write(upload_key(job_id), CASES_BY_NAME["photo-png"].body, "image/png")

    give_up(upload_key(job_id))

    assert job_of(aws, job_id) == queued
    assert aws.object_keys() == [prepared_key(job_id)]
