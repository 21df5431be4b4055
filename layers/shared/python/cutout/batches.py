"""Batches: several jobs created in one call, validated all or nothing, and read back as one.

A batch is one item of the batches table (``Batch``), holding its jobs' ids; each job also names
its batch. It lives as long as its jobs do, and belongs to the key that created it, like a job.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cutout.errors import ErrorCode, JobRejected
from cutout.jobs import TERMINAL_STATUSES, JobStatus

BATCH_PARTITION_KEY = "batch_id"
BATCH_TTL_ATTRIBUTE = "expires_at"


class BatchStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"  # every job is in a terminal status


@dataclass(frozen=True)
class Batch:
    batch_id: str
    created_at: str
    job_ids: list[str]
    expires_at: int
    owner: str | None = None  # as a job's (cutout.clients)
    # The jobs whose end the notifier has seen (a set, so a retried record adds nothing), and when
    # the "Batch Completed" event was sent (cutout.events).
    # None until the first (DynamoDB stores no empty set).
    ended_job_ids: set[str] | None = None
    completed_at: str | None = None

    @property
    def all_ended(self) -> bool:
        return (self.ended_job_ids or set()) >= set(self.job_ids)


def batch_status(statuses: list[JobStatus]) -> BatchStatus:
    return BatchStatus.DONE if all(status in TERMINAL_STATUSES for status in statuses) else BatchStatus.RUNNING


def status_counts(statuses: list[JobStatus]) -> dict[str, int]:
    """How many jobs are in each status, every status named (0 where none is)."""
    counted = Counter(statuses)
    return {status.value: counted[status] for status in JobStatus}


# The request field a rejection without its own problems is about.
REJECTED_FIELD = {ErrorCode.UNSUPPORTED_MEDIA_TYPE: "content_type", ErrorCode.PAYLOAD_TOO_LARGE: "content_length"}


def item_problems(index: int, rejection: JobRejected) -> list[dict]:
    """A rejected batch item's problems, each field named from the batch's body (`jobs.3.model`)."""
    problems = (rejection.details or {}).get("problems")
    if problems is None:
        problems = [{"field": REJECTED_FIELD.get(rejection.code, "body"), "problem": rejection.message}]
    return [{**problem, "field": f"jobs.{index}.{problem['field']}"} for problem in problems]


def all_or_nothing[Item, Built](items: list[Item], build: Callable[[Item], Built]) -> list[Built]:
    """build(item) for every item, or one JobRejected (400) naming every bad item's fields when
    any is refused: a batch creates all its jobs or none."""
    built, problems = [], []
    for index, item in enumerate(items):
        try:
            built.append(build(item))
        except JobRejected as rejection:
            problems.extend(item_problems(index, rejection))
    if problems:
        raise JobRejected(ErrorCode.BAD_REQUEST, "the batch is not valid: no job was created", {"problems": problems})
    return built
