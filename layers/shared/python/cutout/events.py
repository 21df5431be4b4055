"""What Cutout tells the world when a job ends: one event per job that reaches a terminal status,
and one per batch whose last job ended.

The events come from the jobs table's stream, the one record of every transition whoever made it
(inference, normalize, the API's cancel and overdue moves), so no path can forget to emit one.
Delivery is at least once: a consumer drops an ``event_id`` it has already handled (a job ends
once, so its id is the job's and its status; a batch completes once).
"""

from dataclasses import asdict
from enum import StrEnum

from cutout.batches import Batch, status_counts
from cutout.jobs import TERMINAL_STATUSES, Job, JobStatus

EVENT_SOURCE = "cutout"
BATCH_COMPLETED = "Batch Completed"


class JobEvent(StrEnum):
    """A terminal status as webhooks name it (the Cutout-Event header)."""

    SUCCEEDED = "job.succeeded"
    FAILED = "job.failed"
    CANCELLED = "job.cancelled"
    EXPIRED = "job.expired"

    @classmethod
    def of(cls, status: JobStatus) -> "JobEvent":
        return cls[JobStatus(status).name]

    @property
    def detail_type(self) -> str:
        """As EventBridge rules match it: "Job Succeeded"."""
        return f"Job {self.name.title()}"


def has_ended(before: JobStatus | None, after: JobStatus) -> bool:
    """Whether a change of a job's item is its terminal transition (before: None for a new item)."""
    return after in TERMINAL_STATUSES and before not in TERMINAL_STATUSES


def job_event_id(job: Job) -> str:
    return f"{job.job_id}.{job.status.value}"


def job_detail(job: Job) -> dict:
    """The event's detail: the job as GET /v1/jobs/{id} shows it, without URLs, with its owner and batch."""
    result = None
    if job.result is not None:
        result = {**asdict(job.result), "output": job.output.to_json()}
    return {
        "event_id": job_event_id(job),
        "job_id": job.job_id,
        "status": job.status.value,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "stages": dict(job.stages),
        "model": job.model,
        "error": None if job.error is None else asdict(job.error),
        "result": result,
        "owner": job.owner,
        "batch_id": job.batch_id,
    }


def batch_detail(batch: Batch, jobs: list[Job]) -> dict:
    return {
        "event_id": f"{batch.batch_id}.completed",
        "batch_id": batch.batch_id,
        "owner": batch.owner,
        "counts": status_counts([job.status for job in jobs]),
        "jobs": [{"job_id": job.job_id, "status": job.status.value} for job in jobs],
    }
