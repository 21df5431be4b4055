"""Job ends reach clients without polling, on the stack deployed to LocalStack: webhooks to a
receiver on 127.0.0.1 (the local deployment allows private callback URLs), and EventBridge events
to a rule's SQS target."""

import io
import json
import os
import time
import uuid

import pytest
import requests
from PIL import Image

from cutout.webhooks import signature_is_valid
from tests.support.webhook_receiver import WebhookReceiver

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
# After the first delivery, how long a second one would have had to show up.
QUIET_S = 5
DELIVERY_WAIT_S = 90


def photo_bytes(name: str = "coffee.png", side: int = 640) -> bytes:
    image = Image.open(os.path.join(DATA, name)).convert("RGB")
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def receiver():
    with WebhookReceiver() as listening:
        yield listening


def wait_for_deliveries(stack, receiver: WebhookReceiver, path: str, count: int = 1) -> list:
    stack.wait_until(lambda: len(receiver.to(path)) >= count, f"{count} deliveries to {path}", DELIVERY_WAIT_S)
    time.sleep(QUIET_S)
    return receiver.to(path)


def assert_one_signed_delivery(stack, receiver: WebhookReceiver, path: str, job_id: str, event: str) -> dict:
    (delivery,) = wait_for_deliveries(stack, receiver, path)
    assert delivery.headers["Cutout-Event"] == event
    assert delivery.headers["Content-Type"] == "application/json"
    assert signature_is_valid(stack.webhook_secret, delivery.headers["Cutout-Signature"], delivery.body, time.time())
    assert not signature_is_valid("another secret", delivery.headers["Cutout-Signature"], delivery.body, time.time())
    body = json.loads(delivery.body)
    assert body["job_id"] == job_id and body["status"] == event.removeprefix("job.")
    return body


def test_a_succeeded_job_is_delivered_once_signed_with_a_result_url(stack, receiver):
    job = stack.submit(photo_bytes(), "image/jpeg", callback_url=receiver.url("/succeeded"))

    body = assert_one_signed_delivery(stack, receiver, "/succeeded", job["job_id"], "job.succeeded")

    assert body == {**stack.get_job(job["job_id"]), "result": body["result"]}, "the body is the job's view"
    download = requests.get(body["result"]["url"], timeout=30)
    assert download.status_code == 200 and download.content.startswith(b"\x89PNG")


def test_a_failed_job_is_delivered_once_with_its_error(stack, receiver):
    job = stack.submit(os.urandom(4096), "image/jpeg", callback_url=receiver.url("/failed"))

    body = assert_one_signed_delivery(stack, receiver, "/failed", job["job_id"], "job.failed")

    assert body["error"]["code"] == "unsupported_format" and body["result"] is None


def test_a_cancelled_job_is_delivered_once(stack, receiver):
    image = photo_bytes()
    job = stack.create_job(content_type="image/jpeg", content_length=len(image), callback_url=receiver.url("/cancel"))

    cancel = requests.delete(f"{stack.api_url}/v1/jobs/{job['job_id']}", headers=stack.headers, timeout=10)

    assert cancel.status_code == 200
    assert_one_signed_delivery(stack, receiver, "/cancel", job["job_id"], "job.cancelled")


def test_a_receiver_that_fails_twice_gets_the_delivery_on_the_third_attempt(stack):
    with WebhookReceiver(statuses=[500, 500]) as flaky:
        job = stack.submit(photo_bytes(), "image/jpeg", callback_url=flaky.url("/flaky"))

        attempts = wait_for_deliveries(stack, flaky, "/flaky", count=3)

    assert len(attempts) == 3, "retried until a 2xx, then no more"
    for attempt in attempts:
        assert json.loads(attempt.body)["job_id"] == job["job_id"]
        assert signature_is_valid(stack.webhook_secret, attempt.headers["Cutout-Signature"], attempt.body, time.time())
    item = stack.client("dynamodb").get_item(TableName=stack.table, Key={"job_id": {"S": job["job_id"]}})["Item"]
    assert "callback_delivered_at" in item


def test_a_callback_url_the_deployment_refuses_is_a_400(stack):
    response = requests.post(
        f"{stack.api_url}/v1/jobs",
        json={"content_type": "image/jpeg", "content_length": 1000, "callback_url": "ftp://127.0.0.1/hook"},
        headers=stack.headers,
        timeout=10,
    )

    assert response.status_code == 400
    assert [problem["field"] for problem in response.json()["error"]["details"]["problems"]] == ["callback_url"]


@pytest.fixture
def bus_listener(stack):
    """An SQS queue that an EventBridge rule on the stack's bus fills with every Cutout event."""
    events, sqs = stack.client("events"), stack.client("sqs")
    name = f"cutout-test-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    events.put_rule(Name=name, EventBusName=stack.event_bus, EventPattern=json.dumps({"source": ["cutout"]}))
    events.put_targets(
        Rule=name, EventBusName=stack.event_bus, Targets=[{"Id": "queue", "Arn": stack.queue_arn(queue_url)}]
    )

    def received() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(message["Body"]) for message in messages.get("Messages", [])]

    yield received
    events.remove_targets(Rule=name, EventBusName=stack.event_bus, Ids=["queue"])
    events.delete_rule(Name=name, EventBusName=stack.event_bus)
    sqs.delete_queue(QueueUrl=queue_url)


def test_an_eventbridge_rule_on_the_bus_receives_job_and_batch_events(stack, bus_listener):
    images = [photo_bytes(side=side) for side in (480, 560)]
    body = {"jobs": [{"content_type": "image/jpeg", "content_length": len(image)} for image in images]}
    created = requests.post(f"{stack.api_url}/v1/batches", json=body, headers=stack.headers, timeout=30)
    assert created.status_code == 201, created.text
    batch = created.json()
    for job, image in zip(batch["jobs"], images, strict=True):
        upload = job["upload"]
        assert requests.put(upload["url"], data=image, headers=upload["headers"], timeout=30).status_code == 200
    job_ids = {job["job_id"] for job in batch["jobs"]}

    events: list[dict] = []
    stack.wait_until(
        lambda: events.extend(bus_listener()) or any(e["detail-type"] == "Batch Completed" for e in events),
        "the batch's completion reaches the rule's queue",
        DELIVERY_WAIT_S,
    )

    ended = {e["detail"]["job_id"]: e for e in events if e["detail-type"] == "Job Succeeded"}
    assert set(ended) == job_ids
    for job_id, event in ended.items():
        assert event["source"] == "cutout"
        assert event["detail"]["event_id"] == f"{job_id}.succeeded"
        assert event["detail"]["batch_id"] == batch["batch_id"]
        assert event["detail"]["result"]["format"] == "png" and "url" not in json.dumps(event["detail"])
    (completed,) = [e for e in events if e["detail-type"] == "Batch Completed"]
    assert completed["detail"]["batch_id"] == batch["batch_id"]
    assert completed["detail"]["counts"]["succeeded"] == len(images)


def test_a_job_nobody_uploads_to_expires_at_its_deadline_and_is_delivered(stack, receiver):
    job = stack.create_job(content_type="image/jpeg", content_length=1000, callback_url=receiver.url("/expired"))
    # The deadline check waits for the upload URL's life (15 minutes): move the deadline into the
    # past, then deliver the check now, as SQS would once its delay is over.
    stack.client("dynamodb").update_item(
        TableName=stack.table,
        Key={"job_id": {"S": job["job_id"]}},
        UpdateExpression="SET upload_expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    stack.client("sqs").send_message(
        QueueUrl=stack.deadline_queue_url, MessageBody=json.dumps({"job_id": job["job_id"]})
    )

    body = assert_one_signed_delivery(stack, receiver, "/expired", job["job_id"], "job.expired")

    assert body["error"]["code"] == "upload_not_received"
    item = stack.client("dynamodb").get_item(TableName=stack.table, Key={"job_id": {"S": job["job_id"]}})["Item"]
    assert item["status"]["S"] == "expired", "the deadline check moved it, not a poll"
