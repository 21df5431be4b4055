"""The stack deployed to LocalStack on this host, as the end-to-end, CLI and browser tests use it."""

import time
from dataclasses import dataclass

import boto3
import requests

from cutout.jobs import TERMINAL_STATUSES
from localdev import localstack_host
from localdev import stack as local_stack

ENDPOINT = "http://127.0.0.1:4566"
RESULT_TTL_S = 30
# A failed inference attempt is redelivered after the queue's visibility timeout (6x the
# inference timeout), and a message goes to the dead-letter queue on the receive after its last
# allowed attempt: a short timeout and two attempts keep the fault tests around a minute each.
INFERENCE_TIMEOUT_S = 10
MAX_RECEIVE_COUNT = 2
# Short TTLs so a test can watch a result expire; the rest are the documented defaults.
TEST_CONTEXT = {
    "result_ttl_s": RESULT_TTL_S,
    "result_url_ttl_s": 10,
    "inference_timeout_s": INFERENCE_TIMEOUT_S,
    "max_receive_count": MAX_RECEIVE_COUNT,
}
STAGE_ORDER = ["awaiting_upload", "normalizing", "queued", "processing", "succeeded"]


@dataclass
class LocalStack:
    api_url: str
    bucket: str
    table: str
    queue_url: str
    dead_letter_queue_url: str
    result_ttl_s: int
    api_key: str  # the key `make up` created: every API call but health sends it
    event_bus: str
    webhook_secret: str  # what signs webhook deliveries (Cutout-Signature)
    deadline_queue_url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    def client(self, service: str):
        return boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1")

    def queue_arn(self, queue_url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]

    def inference_mapping(self) -> dict:
        """The event source mapping that feeds the inference queue to its function."""
        mappings = self.client("lambda").list_event_source_mappings(EventSourceArn=self.queue_arn(self.queue_url))
        (mapping,) = mappings["EventSourceMappings"]
        return mapping

    def normalize_function_arn(self) -> str:
        """The function the bucket notifies of uploads."""
        notifications = self.client("s3").get_bucket_notification_configuration(Bucket=self.bucket)
        (target,) = notifications["LambdaFunctionConfigurations"]
        return target["LambdaFunctionArn"]

    def create_job(self, **body) -> dict:
        response = requests.post(f"{self.api_url}/v1/jobs", json=body, headers=self.headers, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    def submit(
        self,
        image: bytes,
        content_type: str,
        output: str | dict = "png",
        filename: str | None = None,
        model: str | None = None,
        callback_url: str | None = None,
    ) -> dict:
        """Create a job and upload its image. output: a format, or the whole `output` object."""
        options = {"format": output} if isinstance(output, str) else output
        job = self.create_job(
            content_type=content_type,
            content_length=len(image),
            output=options,
            filename=filename,
            model=model,
            callback_url=callback_url,
        )
        upload = job["upload"]
        put = requests.request(upload["method"], upload["url"], data=image, headers=upload["headers"], timeout=60)
        assert put.status_code == 200, put.text
        return job

    def get_job(self, job_id: str) -> dict:
        response = requests.get(f"{self.api_url}/v1/jobs/{job_id}", headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, job_id: str, timeout_s: float = 180) -> dict:
        """Poll as a frontend does, with backoff, until the job is terminal."""
        deadline, delay = time.monotonic() + timeout_s, 0.2
        while time.monotonic() < deadline:
            job = self.get_job(job_id)
            if job["status"] in TERMINAL_STATUSES:
                return job
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s} s: {job}")

    def wait_until(self, condition, what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            time.sleep(0.5)

    def wait_for_status(self, job_id: str, statuses: set[str], timeout_s: float = 60) -> dict:
        """Poll quickly until the job reaches one of statuses (a fault test acts in that window)."""
        deadline = time.monotonic() + timeout_s
        while (job := self.get_job(job_id))["status"] not in statuses:
            assert job["status"] not in TERMINAL_STATUSES, (
                f"job {job_id} ended {job['status']} before {statuses}: {job}"
            )
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout_s} s"
            time.sleep(0.05)
        return job

    def object_keys(self) -> set[str]:
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def keys_of(self, job_id: str) -> set[str]:
        return {key for key in self.object_keys() if job_id in key}

    def assert_keys_settle(self, job_id: str, expected: set[str], timeout_s: float = 30) -> None:
        """The job's objects come to be exactly `expected`. A stage records the job's new status
        before it deletes what it no longer needs, so a read can land between the two."""
        deadline = time.monotonic() + timeout_s
        while (keys := self.keys_of(job_id)) != expected:
            assert time.monotonic() < deadline, f"job {job_id} keeps {keys}, not {expected}"
            time.sleep(0.5)


def brought_up():
    """Deploy the stack (starting LocalStack if needed); yields it, then stops what it started."""
    was_running = localstack_host.healthy()
    try:
        # The browser tests serve their own copy of the page: no page server to leave behind.
        deployed = local_stack.up(TEST_CONTEXT, serve_web=False)
        yield LocalStack(
            api_url=deployed["api_url"],
            bucket=deployed["bucket"],
            table=deployed["table"],
            queue_url=deployed["queue_url"],
            dead_letter_queue_url=deployed["dead_letter_queue_url"],
            result_ttl_s=RESULT_TTL_S,
            api_key=deployed["api_key"],
            event_bus=deployed["event_bus"],
            webhook_secret=deployed["webhook_secret"],
            deadline_queue_url=deployed["deadline_queue_url"],
        )
    finally:
        if not was_running:
            local_stack.down()
