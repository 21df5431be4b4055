"""Jobs: their states, the transitions allowed between them, and how a job reads to a client.

A job item is a plain dict, the shape stored in DynamoDB. Every change of state goes through
``check_transition`` and is written conditionally on the previous state, so of two concurrent
deliveries only one moves a job, and a delivery for a job that has moved on does nothing.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum

from cutout.errors import ErrorCode, JobRejected
from cutout.keys import upload_key
from cutout.settings import Settings


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    NORMALIZING = "normalizing"
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


S = JobStatus
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    # Failed straight from awaiting_upload: normalize gave up on its upload (see NORMALIZE_GIVES_UP_ON).
    S.AWAITING_UPLOAD: frozenset({S.NORMALIZING, S.CANCELLED, S.EXPIRED, S.FAILED}),
    # A stage may re-enter itself: a retried event or a redelivered message resumes a job
    # whose worker died or hit a transient error; every step of a stage is idempotent.
    # Normalize re-enters only for the upload the job took (UPLOAD_ETAG).
    S.NORMALIZING: frozenset({S.NORMALIZING, S.QUEUED, S.FAILED}),
    S.QUEUED: frozenset({S.PROCESSING, S.CANCELLED, S.FAILED}),
    S.PROCESSING: frozenset({S.PROCESSING, S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}
CANCELLABLE_STATUSES = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if S.CANCELLED in targets)


class InvalidTransition(Exception):
    pass


def check_transition(current: JobStatus, target: JobStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[JobStatus(current)]:
        raise InvalidTransition(f"a job cannot go from {current} to {target}")


# The one upload a job takes, by its S3 ETag: recorded when the job moves to normalizing, with
# the bytes already read. The upload URL stays valid for its whole life, so the same key may
# receive other bytes later; they never reach the job and are deleted.
UPLOAD_ETAG = "upload_etag"
# Set once a queued job's message is sent: from then on inference owns the job.
HANDED_OVER_AT = "handed_over_at"
# Where a job can be when normalize gives up on its upload (async retries exhausted or the event
# too old): a queued job only until it is handed over, which the repository's write checks.
NORMALIZE_GIVES_UP_ON = frozenset({S.AWAITING_UPLOAD, S.NORMALIZING, S.QUEUED})


def is_its_upload(job: dict, etag: str) -> bool:
    """The upload the job took. A job that recorded none (in flight when this rule was deployed)
    goes on with the one its event names, as it did before."""
    return job.get(UPLOAD_ETAG, etag) == etag


def takes_upload(job: dict, etag: str) -> bool:
    """Whether normalize works on this upload for the job: the first one it reads while the job
    awaits its upload, and after that only the same one again (a duplicate or retried event)."""
    status = JobStatus(job["status"])
    return status is S.AWAITING_UPLOAD or (status is S.NORMALIZING and is_its_upload(job, etag))


def awaits_hand_over(job: dict) -> bool:
    """Queued, but its message not yet recorded as sent: the normalize run that queued it, or a
    retry of its event, still sends it."""
    return JobStatus(job["status"]) is S.QUEUED and HANDED_OVER_AT not in job


def needs_prepared_source(job: dict | None) -> bool:
    """Queued or processing: inference reads the prepared source, and deletes it once the job ends."""
    return job is not None and JobStatus(job["status"]) in (S.QUEUED, S.PROCESSING)


def needs_its_upload(job: dict) -> bool:
    """Normalizing: a retry of the job's own event may still read its upload, which must stay."""
    return JobStatus(job["status"]) is S.NORMALIZING


def normalize_gave_up_error(attempts: int) -> dict:
    return {
        "code": ErrorCode.RETRIES_EXHAUSTED.value,
        "message": f"the uploaded image could not be processed ({attempts} attempts); please submit it again",
    }


class OutputFormat(StrEnum):
    PNG = "png"
    WEBP = "webp"
    MASK = "mask"

    @property
    def content_type(self) -> str:
        return "image/webp" if self is OutputFormat.WEBP else "image/png"

    @property
    def extension(self) -> str:
        return "webp" if self is OutputFormat.WEBP else "png"


ACCEPTED_UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class JobRequest:
    content_type: str
    content_length: int
    output_format: OutputFormat = OutputFormat.PNG
    filename: str | None = None


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job(job_id: str, request: JobRequest, settings: Settings, now: float) -> dict:
    """The item for a new job, or JobRejected when the declared upload breaks a limit."""
    if request.content_type not in ACCEPTED_UPLOAD_TYPES:
        raise JobRejected(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"content_type must be one of {', '.join(ACCEPTED_UPLOAD_TYPES)}",
            {"content_type": request.content_type},
        )
    if request.content_length > settings.max_upload_bytes:
        raise JobRejected(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"the image is {request.content_length} bytes; the limit is {settings.max_upload_bytes} bytes",
            {"max_bytes": settings.max_upload_bytes},
        )
    item = {
        "job_id": job_id,
        "status": JobStatus.AWAITING_UPLOAD.value,
        "created_at": iso(now),
        "updated_at": iso(now),
        "stages": {JobStatus.AWAITING_UPLOAD.value: iso(now)},
        "content_type": request.content_type,
        "content_length": request.content_length,
        "output_format": request.output_format.value,
        "upload_key": upload_key(job_id),
        "upload_expires_at": int(now + settings.upload_url_ttl_s),
        "expires_at": int(now + settings.job_retention_s),
    }
    if request.filename:
        item["filename"] = request.filename
    return item


def is_live(item: dict | None, now: float) -> bool:
    """DynamoDB TTL deletes expired items only eventually, so every read checks expires_at."""
    return item is not None and int(item["expires_at"]) > now


# A presigned URL lives whole seconds and one of 0 s is refused at once: a result with less than
# this left reads expired, never succeeded with a URL that cannot work.
SHORTEST_RESULT_URL_S = 1


def result_seconds_left(item: dict, now: float) -> int:
    """Whole seconds until the result's TTL ends; negative once it has."""
    return math.floor(int(item["result_expires_at"]) - now)


def effective_status(item: dict, now: float) -> JobStatus:
    """The status a client sees: a result that can no longer be downloaded reads expired (S3
    expiry is in whole days)."""
    status = JobStatus(item["status"])
    if status is JobStatus.SUCCEEDED and result_seconds_left(item, now) < SHORTEST_RESULT_URL_S:
        return JobStatus.EXPIRED
    return status


def overdue_move(item: dict, settings: Settings, now: float) -> tuple[JobStatus, dict] | None:
    """Where a job must go because a deadline passed, with the reason; None while it is on time.

    A job still waiting for its upload after the URL's life expires. A job that sat in a working
    state past its limit lost its worker for good (retries exhausted, a crash on the last
    attempt, a message dead-lettered while queued) and fails rather than hang. The API applies
    the move when it reads the job, conditionally, so a late S3 event or worker finds it moved.
    """
    status = JobStatus(item["status"])
    if status is JobStatus.AWAITING_UPLOAD:
        if now <= int(item["upload_expires_at"]):
            return None
        return JobStatus.EXPIRED, {
            "code": ErrorCode.UPLOAD_NOT_RECEIVED.value,
            "message": "no image was uploaded before the upload URL expired",
        }
    limits = {
        JobStatus.NORMALIZING: settings.stall_timeout_s,
        JobStatus.QUEUED: settings.queued_timeout_s,
        JobStatus.PROCESSING: settings.stall_timeout_s,
    }
    # Only transitions write a job, so updated_at is when it entered its current state.
    if status not in limits or now - datetime.fromisoformat(item["updated_at"]).timestamp() <= limits[status]:
        return None
    if status is JobStatus.QUEUED:
        message = f"the job waited more than {limits[status]} s for inference; please submit it again"
    else:
        message = f"the job made no progress while {status}; its retries ran out. Please submit it again"
    return JobStatus.FAILED, {"code": ErrorCode.STALLED.value, "message": message}


def result_is_available(item: dict, now: float) -> bool:
    return effective_status(item, now) is JobStatus.SUCCEEDED


def public_view(item: dict, now: float, result_url: str | None = None, result_url_expires_at: float | None = None) -> dict:
    """The job as GET /v1/jobs/{id} shows it; the result appears only while it is available."""
    status = effective_status(item, now)
    error = item.get("error")
    if status is JobStatus.EXPIRED and item["status"] == JobStatus.SUCCEEDED.value:  # its result is gone
        error = {
            "code": ErrorCode.RESULT_EXPIRED.value,
            "message": f"the result could be downloaded until {iso(int(item['result_expires_at']))}; "
            "please submit the image again",
        }
    result = None
    if result_url and status is JobStatus.SUCCEEDED:
        stored = item["result"]
        result = {
            "url": result_url,
            "expires_at": iso(result_url_expires_at),
            "format": stored["format"],
            "content_type": stored["content_type"],
            "width": int(stored["width"]),
            "height": int(stored["height"]),
            "bytes": int(stored["bytes"]),
        }
    return {
        "job_id": item["job_id"],
        "status": status.value,
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
        "stages": dict(item.get("stages", {})),
        "error": dict(error) if error else None,
        "result": result,
    }


def result_url_lifetime_s(item: dict, settings: Settings, now: float) -> int:
    """Whole seconds a result URL issued now lives: a few minutes, and never past the result's own
    TTL; at least SHORTEST_RESULT_URL_S while the result is available."""
    return min(settings.result_url_ttl_s, result_seconds_left(item, now))


def download_filename(item: dict) -> str:
    """A safe attachment name: the client's file stem reduced to plain characters, then '-cutout'."""
    stem = (item.get("filename") or "image").rsplit(".", 1)[0]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in stem)[:100] or "image"
    return f"{safe}-cutout.{OutputFormat(item['output_format']).extension}"
