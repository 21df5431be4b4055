"""A job as a client reads it: the body of GET /v1/jobs/{id}, whose OpenAPI schema is made from
these definitions too."""

from dataclasses import dataclass, fields

from cutout.errors import ErrorDetail
from cutout.jobs import Job, JobStatus, ResultFile, effective_status, iso, result_expired_error


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
