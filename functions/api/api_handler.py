"""API Gateway (REST, proxy) entry point: create a job, read it, cancel it."""

import time
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from cutout import jobs as job_rules
from cutout.errors import ErrorCode, JobRejected
from cutout.jobs import JobRequest, JobStatus, OutputFormat
from cutout.keys import is_job_id, new_job_id, result_key
from cutout_aws import job_repository, object_store, settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()

HTTP_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.NOT_CANCELLABLE: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
}


origins = [o.strip() for o in settings().allowed_origins.split(",") if o.strip()] or ["*"]
app = APIGatewayRestResolver(
    enable_validation=True,
    cors=CORSConfig(allow_origin=origins[0], extra_origins=origins[1:], max_age=600),
)


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class OutputOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: OutputFormat = OutputFormat.PNG


class CreateJobBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content_type: str = Field(description="image/jpeg, image/png or image/webp", max_length=100)
    content_length: int = Field(strict=True, gt=0, description="the exact size in bytes of the image to upload")
    filename: str | None = Field(default=None, max_length=255)
    output: OutputOptions = OutputOptions()


class UploadInstructions(BaseModel):
    method: str
    url: str
    headers: dict[str, str]
    expires_at: str


class CreatedJob(BaseModel):
    job_id: str
    status: JobStatus
    upload: UploadInstructions
    links: dict[str, str]


class JobResult(BaseModel):
    url: str
    expires_at: str
    format: OutputFormat
    content_type: str
    width: int
    height: int
    bytes: int


class JobView(BaseModel):
    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    stages: dict[str, str]
    error: ErrorDetail | None
    result: JobResult | None


def documented_errors(*statuses: int) -> dict:
    return {
        status: {"description": "error", "content": {"application/json": {"model": ErrorBody}}} for status in statuses
    }


def error_response(rejection: JobRejected) -> Response:
    return Response(
        status_code=HTTP_STATUS[rejection.code],
        content_type=content_types.APPLICATION_JSON,
        body={"error": rejection.as_dict()},
    )


@app.exception_handler(JobRejected)
def handle_rejection(rejection: JobRejected) -> Response:
    return error_response(rejection)


@app.exception_handler(RequestValidationError)
def handle_invalid_request(error: RequestValidationError) -> Response:
    problems = [{"field": ".".join(str(part) for part in e["loc"]), "problem": e["msg"]} for e in error.errors()]
    return error_response(JobRejected(ErrorCode.BAD_REQUEST, "the request body is not valid", {"problems": problems}))


@app.exception_handler(Exception)
def handle_unexpected(_error: Exception) -> Response:
    logger.exception("request failed")
    return Response(
        status_code=500,
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": ErrorCode.INTERNAL_ERROR.value, "message": "Cutout could not serve this request; try again"}},
    )


@app.not_found
def handle_unknown_route(_exception) -> Response:
    return error_response(JobRejected(ErrorCode.NOT_FOUND, "no such route"))


def job_not_found(job_id: str) -> JobRejected:
    return JobRejected(ErrorCode.NOT_FOUND, f"no job {job_id!r}: unknown, malformed or expired")


def load_job(job_id: str, now: float) -> dict:
    """The live job, first moved on if a deadline passed: a poll never waits on a lost worker
    or an upload that will not come."""
    item = job_repository().get(job_id, now) if is_job_id(job_id) else None
    if item is None:
        raise job_not_found(job_id)
    move = job_rules.overdue_move(item, settings(), now)
    if move is None:
        return item
    target, error = move
    moved = job_repository().transition(job_id, JobStatus(item["status"]), target, now, error=error)
    if moved is None:  # something else moved it first: read what it is now
        return load_job(job_id, now)
    logger.warning("moved an overdue job", extra={"job_id": job_id, "from": item["status"], "to": target})
    metrics.add_metric(name="JobsExpired" if target is JobStatus.EXPIRED else "JobsStalled", unit=MetricUnit.Count, value=1)
    return moved


@app.post(
    "/v1/jobs",
    summary="Create a job and get the URL to upload its image to",
    responses={201: {"description": "created"}, **documented_errors(400, 413, 415)},
)
@tracer.capture_method
def create_job(body: CreateJobBody) -> Response[CreatedJob]:
    now = time.time()
    request = JobRequest(
        content_type=body.content_type,
        content_length=body.content_length,
        output_format=body.output.format,
        filename=body.filename,
    )
    item = job_rules.new_job(new_job_id(), request, settings(), now)
    upload_url = object_store().presign_upload(
        item["upload_key"], request.content_type, request.content_length, settings().upload_url_ttl_s
    )
    job_repository().create(item)
    metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
    created = CreatedJob(
        job_id=item["job_id"],
        status=JobStatus.AWAITING_UPLOAD,
        upload=UploadInstructions(
            method="PUT",
            url=upload_url,
            headers={"Content-Type": request.content_type, "Content-Length": str(request.content_length)},
            expires_at=job_rules.iso(item["upload_expires_at"]),
        ),
        links={"self": f"/v1/jobs/{item['job_id']}"},
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=created.model_dump(mode="json"))


@app.get(
    "/v1/jobs/<job_id>",
    summary="Read a job's status, and its result URL once it succeeded",
    responses=documented_errors(404),
)
@tracer.capture_method
def get_job(job_id: str) -> JobView:
    now = time.time()
    item = load_job(job_id, now)
    if not job_rules.result_is_available(item, now):
        return JobView(**job_rules.public_view(item, now))
    url_expires_at = job_rules.result_url_expiry(item, settings(), now)
    url = object_store().presign_download(
        result_key(job_id, OutputFormat(item["output_format"]).extension),
        int(url_expires_at - now),
        job_rules.download_filename(item),
    )
    return JobView(**job_rules.public_view(item, now, url, url_expires_at))


@app.delete(
    "/v1/jobs/<job_id>",
    summary="Cancel a job that has not started processing",
    responses=documented_errors(404, 409),
)
@tracer.capture_method
def cancel_job(job_id: str) -> JobView:
    now = time.time()
    load_job(job_id, now)
    cancelled = job_repository().transition(job_id, job_rules.CANCELLABLE_STATUSES, JobStatus.CANCELLED, now)
    if cancelled is None:
        current = load_job(job_id, now)
        raise JobRejected(
            ErrorCode.NOT_CANCELLABLE,
            f"the job is {job_rules.effective_status(current, now)}; only a job that has not started processing can be cancelled",
        )
    metrics.add_metric(name="JobsCancelled", unit=MetricUnit.Count, value=1)
    return JobView(**job_rules.public_view(cancelled, now))


@app.get("/v1/health", summary="Liveness of the API")
def health() -> dict:
    return {"status": "ok"}


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_document():
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=app.get_openapi_json_schema(title="Cutout API", version="1.0.0"),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
