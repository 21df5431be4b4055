"""Jobs: what one is, its states, the transitions allowed between them, and the rules on a job.

A job is one item of the jobs table (``Job``). Every change of state goes through
``check_transition`` and is written conditionally on the previous state, so of two concurrent
deliveries only one moves a job, and a delivery for a job that has moved on does nothing.
"""

import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum

from cutout.errors import ErrorCode, ErrorDetail, JobRejected
from cutout.formats import ACCEPTED_UPLOAD_TYPES
from cutout.keys import upload_key
from cutout.models import chosen_model
from cutout.output import OutputFormat, OutputOptions, SubjectBox
from cutout.settings import Settings
from cutout.webhooks import callback_url_problem


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
    # Normalize re-enters only for the upload the job took (Job.upload_etag).
    S.NORMALIZING: frozenset({S.NORMALIZING, S.QUEUED, S.FAILED}),
    S.QUEUED: frozenset({S.PROCESSING, S.CANCELLED, S.FAILED}),
    S.PROCESSING: frozenset({S.PROCESSING, S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}
CANCELLABLE_STATUSES = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if S.CANCELLED in targets)
# A client stops polling a job in one of these: nothing moves it again.
TERMINAL_STATUSES = frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if not targets)
# Where a job can be when normalize gives up on its upload (async retries exhausted or the event
# too old): a queued job only until it is handed over, which the repository's write checks.
NORMALIZE_GIVES_UP_ON = frozenset({S.AWAITING_UPLOAD, S.NORMALIZING, S.QUEUED})


class InvalidTransition(Exception):
    pass


def check_transition(current: JobStatus, target: JobStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[JobStatus(current)]:
        raise InvalidTransition(f"a job cannot go from {current} to {target}")


@dataclass(frozen=True)
class ResultFile:
    """The cutout inference wrote for a job, as the job records it."""

    format: OutputFormat
    content_type: str
    width: int
    height: int
    bytes: int
    subject: SubjectBox | None  # None: the model found no subject
    model: str  # the model that made it


@dataclass(frozen=True)
class Job:
    """A job as the table stores it: one item per job, keyed by PARTITION_KEY and deleted by
    DynamoDB's TTL at TTL_ATTRIBUTE. Only transitions change a job (``cutout.aws``)."""

    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    # Each state the job went through, with when it first entered it: a retried delivery that
    # re-enters a stage keeps its time, so the stages read in the order the job went through them.
    stages: dict[str, str]
    content_type: str
    content_length: int
    output: OutputOptions
    model: str  # a cutout.models name
    upload_key: str
    upload_expires_at: int
    expires_at: int
    filename: str | None = None
    # The id of the API key that created the job (cutout.clients); None without API keys.
    owner: str | None = None
    # The batch the job was created in, if any.
    batch_id: str | None = None
    # Where the job's outcome is POSTed when it ends (cutout.webhooks), and when that was answered 2xx.
    callback_url: str | None = None
    callback_delivered_at: str | None = None
    # The one upload a job takes, by its S3 ETag: recorded when the job moves to normalizing, with
    # the bytes already read. The upload URL stays valid for its whole life, so the same key may
    # receive other bytes later; they never reach the job and are deleted.
    upload_etag: str | None = None
    # Set once a queued job's message is sent: from then on inference owns the job.
    handed_over_at: str | None = None
    # The queue's receive count of the delivery that last entered processing: above 1, an earlier
    # worker died or failed on the job.
    processing_attempt: int | None = None
    # The prepared source, once normalize wrote it.
    width: int | None = None
    height: int | None = None
    prepared_content_type: str | None = None
    error: ErrorDetail | None = None
    result: ResultFile | None = None
    result_expires_at: int | None = None

    @property
    def output_format(self) -> OutputFormat:
        return self.output.format


JOB_FIELDS = frozenset(f.name for f in fields(Job))
PARTITION_KEY = "job_id"
TTL_ATTRIBUTE = "expires_at"


def is_its_upload(job: Job, etag: str) -> bool:
    """The upload the job took. A job that recorded none (in flight when this rule was deployed)
    goes on with the one its event names, as it did before."""
    return job.upload_etag in (None, etag)


def takes_upload(job: Job, etag: str) -> bool:
    """Whether normalize works on this upload for the job: the first one it reads while the job
    awaits its upload, and after that only the same one again (a duplicate or retried event)."""
    return job.status is S.AWAITING_UPLOAD or (job.status is S.NORMALIZING and is_its_upload(job, etag))


def resumes_hand_over(job: Job, etag: str) -> bool:
    """Whether this event of the job's own upload sends the job's message: the job is queued but
    its message was never recorded as sent, so the normalize run that queued it died after it did.
    Inference ignores a duplicate message."""
    return job.status is S.QUEUED and job.handed_over_at is None and is_its_upload(job, etag)


def needs_prepared_source(job: Job | None) -> bool:
    """Queued or processing: inference reads the prepared source, and deletes it once the job ends."""
    return job is not None and job.status in (S.QUEUED, S.PROCESSING)


def needs_its_upload(job: Job) -> bool:
    """Normalizing: a retry of the job's own event may still read its upload, which must stay."""
    return job.status is S.NORMALIZING


def prepared_byte_limit(settings: Settings) -> int:
    """The most bytes inference reads of a prepared source. Normalize wrote it capped at
    max_output_side per side: even an uncompressed RGBA PNG stays under 5 bytes a pixel. The cap
    only guards memory against a stray object."""
    return settings.max_output_side**2 * 5


def is_last_attempt(receive_count: int, settings: Settings) -> bool:
    """The queue's last delivery of a job's message: if this attempt fails, the message goes to
    the dead-letter queue and no worker comes back for the job."""
    return receive_count >= settings.max_receive_count


def normalize_gave_up_error(attempts: int) -> ErrorDetail:
    return ErrorDetail(
        ErrorCode.RETRIES_EXHAUSTED,
        f"the uploaded image could not be processed ({attempts} attempts); please submit it again",
    )


@dataclass(frozen=True)
class JobRequest:
    content_type: str
    content_length: int
    output: OutputOptions = OutputOptions()
    filename: str | None = None
    model: str | None = None  # None: the deployment's default
    owner: str | None = None  # the caller (cutout.clients.caller_of)
    batch_id: str | None = None
    callback_url: str | None = None


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job(job_id: str, request: JobRequest, settings: Settings, now: float) -> Job:
    """A new job, or JobRejected when the declared upload breaks a limit."""
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
    if request.callback_url is not None:
        problem = callback_url_problem(request.callback_url, settings.webhook_allow_private)
        if problem is not None:
            raise JobRejected(
                ErrorCode.BAD_REQUEST,
                f"callback_url {problem}",
                {"problems": [{"field": "callback_url", "problem": problem}]},
            )
    return Job(
        job_id=job_id,
        status=JobStatus.AWAITING_UPLOAD,
        created_at=iso(now),
        updated_at=iso(now),
        stages={JobStatus.AWAITING_UPLOAD.value: iso(now)},
        content_type=request.content_type,
        content_length=request.content_length,
        output=request.output,
        model=chosen_model(request.model, settings.default_model),
        upload_key=upload_key(job_id),
        upload_expires_at=int(now + settings.upload_url_ttl_s),
        expires_at=int(now + settings.job_retention_s),
        filename=request.filename or None,
        owner=request.owner,
        batch_id=request.batch_id,
        callback_url=request.callback_url,
    )


def upload_seconds_left(job: Job, now: float) -> int | None:
    """Whole seconds an upload URL issued now may live (at least 1), while the job still takes its
    upload; None once it does not (uploaded, cancelled, or its window is over)."""
    if job.status is not JobStatus.AWAITING_UPLOAD or now >= job.upload_expires_at:
        return None
    return max(1, math.floor(job.upload_expires_at - now))


def is_live(job: Job, now: float) -> bool:
    """DynamoDB TTL deletes expired items only eventually, so every read checks expires_at."""
    return job.expires_at > now


# A presigned URL lives whole seconds and one of 0 s is refused at once: a result with less than
# this left reads expired, never succeeded with a URL that cannot work.
SHORTEST_RESULT_URL_S = 1


def result_seconds_left(job: Job, now: float) -> int:
    """Whole seconds until the result's TTL ends; negative once it has."""
    return math.floor(job.result_expires_at - now)


def effective_status(job: Job, now: float) -> JobStatus:
    """The status a client sees: a result that can no longer be downloaded reads expired (S3
    expiry is in whole days)."""
    if job.status is JobStatus.SUCCEEDED and result_seconds_left(job, now) < SHORTEST_RESULT_URL_S:
        return JobStatus.EXPIRED
    return job.status


def result_is_available(job: Job, now: float) -> bool:
    return effective_status(job, now) is JobStatus.SUCCEEDED


def result_expired_error(job: Job) -> ErrorDetail:
    return ErrorDetail(
        ErrorCode.RESULT_EXPIRED,
        f"the result could be downloaded until {iso(job.result_expires_at)}; please submit the image again",
    )


def deadline_of(job: Job, settings: Settings) -> float | None:
    """When the job must have left its current state (epoch seconds); None for a terminal job.

    A job still waiting for its upload expires when the URL's life ends. A job that sits in a
    working state past its limit lost its worker for good (retries exhausted, a crash on the last
    attempt, a message dead-lettered while queued) and fails rather than hang.
    """
    if job.status is JobStatus.AWAITING_UPLOAD:
        return job.upload_expires_at
    limits = {
        JobStatus.NORMALIZING: settings.stall_timeout_s,
        JobStatus.QUEUED: settings.queued_timeout_s,
        JobStatus.PROCESSING: settings.stall_timeout_s,
    }
    if job.status not in limits:
        return None
    # Only transitions change updated_at, so it is when the job entered its current state.
    return datetime.fromisoformat(job.updated_at).timestamp() + limits[job.status]


def overdue_move(job: Job, settings: Settings, now: float) -> tuple[JobStatus, ErrorDetail] | None:
    """Where a job must go because its deadline passed, with the reason; None while it is on time.

    Applied conditionally by whoever finds the job overdue first: the API when it reads the job,
    the notifier's deadline check when the deadline comes. A late S3 event or worker finds it moved.
    """
    deadline = deadline_of(job, settings)
    if deadline is None or now <= deadline:
        return None
    if job.status is JobStatus.AWAITING_UPLOAD:
        return JobStatus.EXPIRED, ErrorDetail(
            ErrorCode.UPLOAD_NOT_RECEIVED, "no image was uploaded before the upload URL expired"
        )
    if job.status is JobStatus.QUEUED:
        message = f"the job waited more than {settings.queued_timeout_s} s for inference; please submit it again"
    else:
        message = f"the job made no progress while {job.status}; its retries ran out. Please submit it again"
    return JobStatus.FAILED, ErrorDetail(ErrorCode.STALLED, message)


def overdue_metric(target: JobStatus) -> str:
    """The metric an overdue move counts in, whoever applied it."""
    return "JobsExpired" if target is JobStatus.EXPIRED else "JobsStalled"


# SQS delays a message by at most 15 minutes: a later deadline is checked again, as often as needed.
MAX_CHECK_DELAY_S = 900


def check_delay_s(job: Job, settings: Settings, now: float) -> int | None:
    """How long to wait before checking the job's deadline (a second past it); None for a terminal job."""
    deadline = deadline_of(job, settings)
    if deadline is None:
        return None
    return max(0, min(MAX_CHECK_DELAY_S, math.ceil(deadline - now) + 1))


def result_url_lifetime_s(job: Job, settings: Settings, now: float) -> int:
    """Whole seconds a result URL issued now lives: a few minutes, and never past the result's own
    TTL; at least SHORTEST_RESULT_URL_S while the result is available."""
    return min(settings.result_url_ttl_s, result_seconds_left(job, now))


def download_filename(job: Job) -> str:
    """A safe attachment name: the client's file stem reduced to plain characters, then '-cutout'."""
    stem = (job.filename or "image").rsplit(".", 1)[0]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in stem)[:100] or "image"
    return f"{safe}-cutout.{job.output_format.extension}"
