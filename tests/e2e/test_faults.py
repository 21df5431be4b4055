"""Faults against the stack deployed to LocalStack: duplicate deliveries, a killed worker, a source
S3 will not serve. Each test asserts the final state of every job involved and that no
intermediate object (uploads/, prepared/) is left behind.

Faults are real ones LocalStack produces, never mocks of our code:
- duplicates are the same S3 notification invoked again through the Lambda API, the same object
  PUT again, and the same message sent again to the queue;
- a worker dies by SIGKILL of the inference runtime process mid-job (LocalStack's Cutout executor
  runs each Lambda environment as a local process) and SQS redelivers after the visibility timeout;
- an unavailable bucket is S3 refusing to serve the prepared source (403 InvalidObjectState)
  because the object sits in the GLACIER storage class, exactly what a lifecycle transition does
  on AWS; restoring it makes the next attempt succeed, leaving it archived exhausts the attempts.
  A throttled or unavailable table cannot be produced here: LocalStack serves DynamoDB from moto,
  which never throttles or fails a healthy table.

The archived-source jobs are queued by the first test, so the dead-letter job's redeliveries (a
visibility timeout each) overlap the tests between instead of adding to them.
"""

import hashlib
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.support.deployed_stack import INFERENCE_TIMEOUT_S, MAX_RECEIVE_COUNT, STAGE_ORDER
from tests.support.hostile_images import encoded, photo

# The queue's visibility timeout is 6x the inference timeout (infra/settings.py); a redelivery
# waits it out, then needs time for the attempt itself on a busy machine.
VISIBILITY_TIMEOUT_S = 6 * INFERENCE_TIMEOUT_S
REDELIVERY_WAIT_S = VISIBILITY_TIMEOUT_S + 60
# SQS moves a message to the dead-letter queue on the receive after its last allowed attempt.
DEAD_LETTER_WAIT_S = (MAX_RECEIVE_COUNT + 1) * VISIBILITY_TIMEOUT_S + 60
ARCHIVED = "GLACIER"


def jpeg(name: str, size: tuple[int, int] | None = None) -> bytes:
    return encoded(photo(name, size), "JPEG", quality=92)


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def assert_succeeded_once(stack, job_id: str) -> dict:
    """Succeeded through every stage in order, with exactly one result and no intermediate left."""
    job = stack.get_job(job_id)
    assert job["status"] == "succeeded", job
    assert list(job["stages"]) == STAGE_ORDER
    stamps = list(job["stages"].values())
    assert stamps == sorted(stamps), f"stages out of order: {job['stages']}"
    stack.assert_keys_settle(job_id, {f"results/{job_id}.png"})
    return job


def lasting_state(job: dict) -> dict:
    """What a job read records, without the result URL, which is signed afresh on every read."""
    result = {key: value for key, value in (job["result"] or {}).items() if key not in ("url", "expires_at")}
    return {"status": job["status"], "stages": job["stages"], "updated_at": job["updated_at"], "result": result}


def assert_failed_clean(stack, job_id: str, code: str) -> dict:
    job = stack.get_job(job_id)
    assert (job["status"], (job["error"] or {}).get("code")) == ("failed", code), job
    assert job["result"] is None
    stack.assert_keys_settle(job_id, set())
    return job


def s3_event(bucket: str, key: str, size: int, etag: str) -> dict:
    """The ObjectCreated notification S3 sends for a PUT (version 2.1 of the event structure)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": iso_now(),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:tester"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "fault-test", "x-amz-id-2": "fault-test"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "fault-test",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "tester"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": key, "size": size, "eTag": etag, "sequencer": "0"},
                },
            }
        ]
    }


def sqs_event(stack, job_id: str) -> dict:
    """The batch the event source mapping hands the inference function for one message."""
    return {
        "Records": [
            {
                "messageId": f"fault-test-{job_id}",
                "receiptHandle": "fault-test",
                "body": json.dumps({"job_id": job_id}),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": stack.queue_arn(stack.queue_url),
                "awsRegion": "us-east-1",
            }
        ]
    }


def invoke(stack, function: str, event: dict) -> dict:
    response = stack.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read() or b"null")
    assert "FunctionError" not in response, payload
    return payload


def set_inference_enabled(stack, enabled: bool) -> None:
    mapping = stack.inference_mapping()
    stack.client("lambda").update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
    wanted = "Enabled" if enabled else "Disabled"
    stack.wait_until(lambda: stack.inference_mapping()["State"] == wanted, f"the event source mapping is {wanted}")


@contextmanager
def inference_paused(stack):
    """Queued messages wait while the event source mapping is off, as an operator would pause it."""
    set_inference_enabled(stack, False)
    try:
        yield
    finally:
        set_inference_enabled(stack, True)


def archive(stack, key: str) -> None:
    s3 = stack.client("s3")
    source = {"Bucket": stack.bucket, "Key": key}
    s3.copy_object(Bucket=stack.bucket, Key=key, CopySource=source, StorageClass=ARCHIVED)
    assert s3.head_object(Bucket=stack.bucket, Key=key)["StorageClass"] == ARCHIVED


def inference_log(stack) -> str:
    """Everything the inference function has logged so far. LocalStack writes Lambda logs to
    /aws/lambda/<name>, whatever log group the function's LoggingConfig names."""
    function_name = stack.inference_mapping()["FunctionArn"].split(":")[-1]
    logs = stack.client("logs")
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{function_name}")
    try:
        return "\n".join(event["message"] for page in pages for event in page["events"])
    except logs.exceptions.ResourceNotFoundException:
        return ""  # the group appears with the function's first log


def failed_attempt_logged(stack, job_id: str) -> bool:
    return any(job_id in line and "InvalidObjectState" in line for line in inference_log(stack).splitlines())


def inference_runtime_pids(stack) -> list[int]:
    """The processes of the inference function's execution environments (see lambda_executor.py)."""
    function_name = stack.inference_mapping()["FunctionArn"].split(":")[-1]
    wanted = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"lambda_bootstrap.py" in (entry / "cmdline").read_bytes() and wanted in (
                (entry / "environ").read_bytes().split(b"\0")
            ):
                pids.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return pids


def messages_for(stack, queue_url: str, job_id: str) -> list[dict]:
    """Receive what the queue holds (a short look, then it is visible again) and keep this job's."""
    sqs = stack.client("sqs")
    found, seen = [], set()
    for _ in range(5):
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=5)
        for message in batch.get("Messages", []):
            if message["MessageId"] not in seen and json.loads(message["Body"]).get("job_id") == job_id:
                found.append(message)
            seen.add(message["MessageId"])
    return found


def queue_drained(stack) -> bool:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(count) == 0 for count in attributes.values())


@pytest.fixture(scope="module")
def archived_jobs(stack) -> dict[str, str]:
    """Two jobs queued with their prepared source archived: one to be restored, one left archived."""
    with inference_paused(stack):
        jobs = {name: stack.submit(jpeg("chelsea"), "image/jpeg")["job_id"] for name in ("restored", "dead")}
        for job_id in jobs.values():
            stack.wait_for_status(job_id, {"queued"})
            archive(stack, f"prepared/{job_id}")
    return jobs


def test_an_unavailable_source_is_retried_not_lost(stack, archived_jobs):
    job_id = archived_jobs["restored"]
    stack.wait_until(lambda: failed_attempt_logged(stack, job_id), "the first attempt fails", VISIBILITY_TIMEOUT_S)
    assert stack.get_job(job_id)["status"] == "processing", "a transient failure neither fails nor drops the job"

    stack.client("s3").restore_object(Bucket=stack.bucket, Key=f"prepared/{job_id}", RestoreRequest={"Days": 1})

    stack.wait(job_id, REDELIVERY_WAIT_S)
    assert_succeeded_once(stack, job_id)


def test_an_inference_process_killed_mid_job_is_redelivered_and_completes(stack):
    # A large photo keeps the job in processing for a few seconds: the window to kill it in.
    job_id = stack.submit(jpeg("astronaut", (4096, 4096)), "image/jpeg")["job_id"]
    stack.wait_for_status(job_id, {"processing"})

    pids = inference_runtime_pids(stack)
    assert pids, "the inference runtime is running"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert stack.get_job(job_id)["status"] == "processing", "killed mid-job"

    stack.wait(job_id, REDELIVERY_WAIT_S)
    assert_succeeded_once(stack, job_id)
    item = stack.client("dynamodb").get_item(TableName=stack.table, Key={"job_id": {"S": job_id}})["Item"]
    assert int(item["processing_attempt"]["N"]) >= 2, "a redelivery re-entered processing after the kill"


def test_a_message_that_fails_every_attempt_ends_in_the_dead_letter_queue(stack, archived_jobs):
    job_id = archived_jobs["dead"]

    stack.wait(job_id, DEAD_LETTER_WAIT_S)
    assert_failed_clean(stack, job_id, "retries_exhausted")
    dead_letters = []
    stack.wait_until(
        lambda: dead_letters.extend(messages_for(stack, stack.dead_letter_queue_url, job_id)) or dead_letters,
        "the message reaches the dead-letter queue",
        DEAD_LETTER_WAIT_S,
    )
    sqs = stack.client("sqs")
    for message in dead_letters:
        sqs.delete_message(QueueUrl=stack.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert len(dead_letters) == 1


def test_a_duplicate_s3_event_produces_one_result(stack):
    image = jpeg("chelsea")
    job = stack.submit(image, "image/jpeg")
    job_id, key = job["job_id"], f"uploads/{job['job_id']}"
    # The same notification again, with the object's ETag: the MD5 of a single-part PUT's bytes.
    event = s3_event(stack.bucket, key, len(image), hashlib.md5(image).hexdigest())
    normalize = stack.normalize_function_arn()

    # Two more deliveries of the notification, racing the one S3 sent for the PUT.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: invoke(stack, normalize, event), range(2)))
    stack.wait(job_id)
    done = assert_succeeded_once(stack, job_id)

    invoke(stack, normalize, event)
    upload = job["upload"]
    again = requests.put(upload["url"], data=image, headers=upload["headers"], timeout=60)
    stack.wait_until(lambda: f"uploads/{job_id}" not in stack.keys_of(job_id), "the re-put upload is deleted")

    assert again.status_code == 200
    assert lasting_state(assert_succeeded_once(stack, job_id)) == lasting_state(done), (
        "a late duplicate changes nothing"
    )


def test_a_duplicate_sqs_message_produces_one_result(stack):
    function = stack.inference_mapping()["FunctionArn"]
    with ThreadPoolExecutor(1) as pool:
        with inference_paused(stack):
            job_id = stack.submit(jpeg("coffee"), "image/jpeg")["job_id"]
            stack.wait_for_status(job_id, {"queued"})
            stack.client("sqs").send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps({"job_id": job_id}))
            # LocalStack's event source mapping delivers one batch at a time; AWS runs pollers in
            # parallel, so a third delivery, racing the two queued ones, comes through the Lambda API.
            direct = pool.submit(invoke, stack, function, sqs_event(stack, job_id))
        direct.result()
    stack.wait(job_id)
    done = assert_succeeded_once(stack, job_id)
    stack.wait_until(lambda: queue_drained(stack), "every copy of the message is consumed", REDELIVERY_WAIT_S)

    assert lasting_state(assert_succeeded_once(stack, job_id)) == lasting_state(done), "the duplicates changed nothing"
    assert not messages_for(stack, stack.dead_letter_queue_url, job_id)
