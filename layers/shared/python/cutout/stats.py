"""Operator counters: how many jobs were created, and how many ended in each way, per five minutes.

The notifier counts each job's creation and its end from the jobs table's stream into one item per
five-minute bucket, so the last hour or day is a read of 12 or 288 small items, never a scan of
the jobs. A stream record handled twice (a retried batch) counts twice: the figures are for
watching the service, not for billing.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from cutout.errors import ErrorCode
from cutout.jobs import Job, JobStatus

STATS_PARTITION_KEY = "bucket"
STATS_TTL_ATTRIBUTE = "expires_at"
BUCKET_S = 300
HOUR_S, DAY_S = 3600, 86400
# Kept a little longer than the longest window read.
BUCKET_RETENTION_S = DAY_S + HOUR_S
CREATED = "created"
FAILED_PREFIX = "failed."


def bucket_of(epoch_s: float) -> str:
    start = int(epoch_s // BUCKET_S * BUCKET_S)
    return datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def buckets_within(now: float, window_s: int) -> list[str]:
    """The buckets of the last window_s seconds, the current (partial) one included."""
    return [bucket_of(now - offset) for offset in range(0, window_s, BUCKET_S)]


def end_counter(job: Job) -> str:
    """The counter a job's end adds to: its status, and a failure's error code."""
    if job.status is JobStatus.FAILED:
        return FAILED_PREFIX + (job.error.code if job.error else ErrorCode.INTERNAL_ERROR)
    return job.status.value


@dataclass(frozen=True)
class JobCounts:
    created: int
    succeeded: int
    cancelled: int
    expired: int
    failed: int
    failed_by_code: dict[str, int]  # error code → jobs that failed with it


@dataclass(frozen=True)
class QueueState:
    waiting: int  # messages ready to be received
    in_flight: int  # received, not yet deleted
    oldest_age_s: int | None  # CloudWatch's latest figure; null without one


@dataclass(frozen=True)
class OperatorStats:
    queues: dict[str, QueueState]  # by the WATCHED_QUEUES names
    jobs: dict[str, JobCounts]  # last_hour, last_day
    bucket_s: int  # the counters' granularity: a window starts at a bucket's start


# The queues an operator watches, by the name GET /v1/stats gives each.
WATCHED_QUEUES = ("inference", "inference_dead_letters", "webhooks", "notification_dead_letters")


def summary(buckets: list[dict]) -> JobCounts:
    """The counters of several buckets added up."""
    totals: dict[str, int] = {}
    for bucket in buckets:
        for name, count in bucket.items():
            if name not in (STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE):
                totals[name] = totals.get(name, 0) + int(count)
    failed = {
        name.removeprefix(FAILED_PREFIX): n for name, n in sorted(totals.items()) if name.startswith(FAILED_PREFIX)
    }
    return JobCounts(
        created=totals.get(CREATED, 0),
        succeeded=totals.get(JobStatus.SUCCEEDED.value, 0),
        cancelled=totals.get(JobStatus.CANCELLED.value, 0),
        expired=totals.get(JobStatus.EXPIRED.value, 0),
        failed=sum(failed.values()),
        failed_by_code=failed,
    )


def operator_view(queues: dict[str, QueueState], last_hour: list[dict], last_day: list[dict]) -> OperatorStats:
    """GET /v1/stats and `cutout stats`: each watched queue's state, and the jobs of the last hour and day."""
    return OperatorStats(
        queues={name: queues[name] for name in WATCHED_QUEUES},
        jobs={"last_hour": summary(last_hour), "last_day": summary(last_day)},
        bucket_s=BUCKET_S,
    )
