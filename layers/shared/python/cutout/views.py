"""A job as a client reads it: the body of GET /v1/jobs/{id}, whose OpenAPI schema is made from
these definitions too."""

from collections.abc import Callable
from dataclasses import dataclass, fields

from pydantic import TypeAdapter

from cutout.errors import ErrorDetail
from cutout.jobs import (
    Job,
    JobStatus,
    ResultFile,
    download_filename,
    effective_status,
    iso,
    result_expired_error,
    result_is_available,
    result_url_lifetime_s,
)
from cutout.keys import result_key
from cutout.settings import Settings

# Presigns a download: (key, lifetime in seconds, attachment filename) → URL.
PresignDownload = Callable[[str, int, str], str]


@dataclass(frozen=True)
class JobResult(ResultFile):
    """The job's result with a short-lived URL to download it, and the output options applied."""

    url: str
    expires_at: str
    output: dict  # OutputOptions.to_json(): the API document describes it with OUTPUT_OPTIONS_SCHEMA


@dataclass(frozen=True)
class JobView:
    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    stages: dict[str, str]
    model: str
    error: ErrorDetail | None
    result: JobResult | None


def public_view(
    job: Job, now: float, result_url: str | None = None, result_url_expires_at: float | None = None
) -> JobView:
    """The job as GET /v1/jobs/{id} shows it; the result appears only while it is available."""
    status = effective_status(job, now)
    result_is_gone = status is JobStatus.EXPIRED and job.status is JobStatus.SUCCEEDED
    result = None
    if result_url and status is JobStatus.SUCCEEDED:
        stored = {field.name: getattr(job.result, field.name) for field in fields(job.result)}
        result = JobResult(**stored, url=result_url, expires_at=iso(result_url_expires_at), output=job.output.to_json())
    return JobView(
        job_id=job.job_id,
        status=status,
        created_at=job.created_at,
        updated_at=job.updated_at,
        stages=dict(job.stages),
        model=job.model,
        error=result_expired_error(job) if result_is_gone else job.error,
        result=result,
    )


def client_view(job: Job, now: float, settings: Settings, presign_download: PresignDownload) -> JobView:
    """The job as a client reads it (the API's answer, a webhook's body), with a fresh result URL
    while its result is available."""
    if not result_is_available(job, now):
        return public_view(job, now)
    lifetime_s = result_url_lifetime_s(job, settings, now)
    url = presign_download(result_key(job.job_id, job.output_format.extension), lifetime_s, download_filename(job))
    return public_view(job, now, url, now + lifetime_s)


JOB_VIEW = TypeAdapter(JobView)


def view_json(view: JobView) -> dict:
    """The view as JSON holds it: the body of GET /v1/jobs/{id} and of a webhook."""
    return JOB_VIEW.dump_python(view, mode="json")
