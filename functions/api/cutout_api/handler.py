"""API Gateway (REST, proxy) entry point: create a job, read it, cancel it, and what the service accepts."""

import base64
import json
import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cutout import jobs as job_rules
from cutout.aws import job_repository, object_store, settings
from cutout.browser import ANSWER_HEADERS, CorsPolicy
from cutout.errors import ErrorCode, ErrorDetail, JobRejected
from cutout.formats import ACCEPTED_UPLOAD_TYPES
from cutout.jobs import Job, JobRequest, JobStatus
from cutout.keys import is_job_id, new_job_id, result_key
from cutout.limits import ServiceLimits, service_limits
from cutout.models import MODELS, ModelCatalogue, model_catalogue
from cutout.output import OUTPUT_OPTIONS_SCHEMA, OutputOptions
from cutout.views import JobView, public_view

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
# The longest body the model takes (a 255-character filename and a 100-character type, every
# character escaped as a surrogate pair) is under 5 KiB.
MAX_BODY_BYTES = 16 * 1024

cors_policy = CorsPolicy(settings().allowed_origins)
# The request body is read and validated by read_body, not by Powertools (whose JSON parsing lets
# deep nesting, huge numbers and bad UTF-8 through as 500s); without it, Powertools also stops
# documenting a 422 this API never sends.
app = APIGatewayRestResolver(
    enable_validation=False,
    cors=CORSConfig(
        allow_origin=cors_policy.origins[0],
        extra_origins=list(cors_policy.origins[1:]),
        allow_headers=list(cors_policy.allow_headers),
        max_age=cors_policy.max_age_s,
    ),
)


class ErrorBody(BaseModel):
    error: ErrorDetail


class CreateJobBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The type and size limits are the domain's (415 and 413 with their own messages), so the
    # schema states them without pydantic enforcing them.
    content_type: str = Field(
        description="the image's media type", max_length=100, json_schema_extra={"enum": list(ACCEPTED_UPLOAD_TYPES)}
    )
    content_length: int = Field(
        strict=True,
        gt=0,
        description="the exact size in bytes of the image to upload",
        json_schema_extra={"maximum": settings().max_upload_bytes},
    )
    filename: str | None = Field(default=None, max_length=255)
    # Any object to pydantic: OutputOptions.from_request checks its fields, naming each bad one.
    output: dict = Field(default_factory=dict)
    # Any string to pydantic: the domain answers an unknown name with the valid ones.
    model: str | None = Field(
        default=None,
        max_length=100,
        description="a model from GET /v1/models; omitted: the deployment's default",
        json_schema_extra={"enum": list(MODELS)},
    )


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


class Health(BaseModel):
    status: str


OPENAPI_ERROR_DESCRIPTIONS = {
    400: "the request is not valid; `details.problems` names each bad field",
    404: "no such job: unknown, malformed or expired",
    409: "the job has started processing and can no longer be cancelled",
    413: "the declared image is larger than the upload limit",
    415: "the body is not JSON, or the image type is not accepted",
    429: "over API Gateway's throttle for this route",
    500: "Cutout could not serve this request; try again",
}


def documented(success: int, model: type[BaseModel], *errors: int) -> dict:
    """The responses a route answers, each with its body: throttling and failure apply to every route."""
    responses = {success: {"description": "success", "content": {content_types.APPLICATION_JSON: {"model": model}}}}
    for status in (*errors, 429, 500):
        responses[status] = {
            "description": OPENAPI_ERROR_DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
    return responses


def json_response(status_code: int, body: dict) -> Response:
    """Every answer of the function is built here."""
    return Response(
        status_code=status_code, content_type=content_types.APPLICATION_JSON, body=body, headers=ANSWER_HEADERS
    )


def error_response(status_code: int, error: ErrorDetail) -> Response:
    return json_response(status_code, ErrorBody(error=error).model_dump(mode="json", exclude_none=True))


@app.exception_handler(JobRejected)
def handle_rejection(rejection: JobRejected) -> Response:
    return error_response(HTTP_STATUS[rejection.code], rejection.error)


@app.exception_handler(Exception)
def handle_unexpected(_error: Exception) -> Response:
    logger.exception("request failed")
    return error_response(500, ErrorDetail(ErrorCode.INTERNAL_ERROR, OPENAPI_ERROR_DESCRIPTIONS[500]))


@app.not_found
def handle_unknown_route(_exception) -> Response:
    return handle_rejection(JobRejected(ErrorCode.NOT_FOUND, "no such route"))


def read_body[Body: BaseModel](model: type[Body]) -> Body:
    """The request body as `model`, read once from the raw event. Anything that is not a JSON
    object of that shape is a 4xx: another media type 415; bytes that are not UTF-8, nesting
    deeper than pydantic's parser allows (200), a number too long to be one, or wrong fields 400."""
    event = app.current_event
    media_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type != content_types.APPLICATION_JSON:
        raise JobRejected(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"the request body must be JSON sent as Content-Type: {content_types.APPLICATION_JSON}",
            {"content_type": media_type},
        )
    raw = event.body or ""
    # LocalStack hands over a body that is not UTF-8 base64-encoded; "surrogatepass" keeps a lone
    # surrogate in a text body as the invalid UTF-8 it came from, for the parser to refuse.
    data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise JobRejected(ErrorCode.BAD_REQUEST, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in problem["loc"]) or "body", "problem": problem["msg"]}
            for problem in error.errors(include_url=False, include_input=False)
        ]
        raise JobRejected(ErrorCode.BAD_REQUEST, "the request body is not valid", {"problems": problems}) from None


def api_base_url() -> str:
    """The URL the client reached this API at, up to its stage, so that links and the OpenAPI
    servers are absolute URLs a client follows as they are.

    requestContext.path is the request's path from the stage on (`/prod/v1/jobs`; on a custom
    domain without the stage), and the event's path is the route's (`/v1/jobs`). API Gateway
    serves only HTTPS: plain HTTP is LocalStack, whose path-style URLs
    (`/restapis/<api>/<stage>/_user_request_/...`, used where its host names do not resolve) reach
    the function with a requestContext.path that starts at the stage too.
    """
    event = app.current_event
    context = event.request_context
    host = context.domain_name
    plain_http = event.headers.get("x-forwarded-proto", "https").lower() == "http"
    if plain_http and not host.startswith(f"{context.api_id}."):
        return f"http://{host}/restapis/{context.api_id}/{context.stage}/_user_request_"
    stage_path = context.path.removesuffix(event.path) if context.path.endswith(event.path) else f"/{context.stage}"
    return f"{'http' if plain_http else 'https'}://{host}{stage_path}"


def job_url(job_id: str) -> str:
    return f"{api_base_url()}/v1/jobs/{job_id}"


def job_not_found(job_id: str) -> JobRejected:
    return JobRejected(ErrorCode.NOT_FOUND, f"no job {job_id!r}: unknown, malformed or expired")


def load_job(job_id: str, now: float) -> Job:
    """The live job, first moved on if a deadline passed: a poll never waits on a lost worker
    or an upload that will not come."""
    job = job_repository().get(job_id, now) if is_job_id(job_id) else None
    if job is None:
        raise job_not_found(job_id)
    move = job_rules.overdue_move(job, settings(), now)
    if move is None:
        return job
    target, error = move
    moved = job_repository().transition(job_id, job.status, target, now, error=error)
    if moved is None:  # something else moved it first: read what it is now
        return load_job(job_id, now)
    logger.warning("moved an overdue job", extra={"job_id": job_id, "from": job.status, "to": target})
    metrics.add_metric(
        name="JobsExpired" if target is JobStatus.EXPIRED else "JobsStalled", unit=MetricUnit.Count, value=1
    )
    return moved


JOB_VIEW = TypeAdapter(JobView)


def job_response(view: JobView) -> Response:
    return json_response(200, JOB_VIEW.dump_python(view, mode="json"))


@app.post(
    "/v1/jobs",
    summary="Create a job and get the URL to upload its image to",
    responses=documented(201, CreatedJob, 400, 413, 415),
    openapi_extensions={
        "requestBody": {
            "required": True,
            "content": {content_types.APPLICATION_JSON: {"schema": {"$ref": "#/components/schemas/CreateJobBody"}}},
        }
    },
)
@tracer.capture_method
def create_job():
    body = read_body(CreateJobBody)
    now = time.time()
    request = JobRequest(
        content_type=body.content_type,
        content_length=body.content_length,
        output=OutputOptions.from_request(body.output),
        filename=body.filename,
        model=body.model,
    )
    job = job_rules.new_job(new_job_id(), request, settings(), now)
    upload_url = object_store().presign_upload(
        job.upload_key, request.content_type, request.content_length, settings().upload_url_ttl_s
    )
    job_repository().create(job)
    metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
    created = CreatedJob(
        job_id=job.job_id,
        status=JobStatus.AWAITING_UPLOAD,
        upload=UploadInstructions(
            method="PUT",
            url=upload_url,
            headers={"Content-Type": request.content_type, "Content-Length": str(request.content_length)},
            expires_at=job_rules.iso(job.upload_expires_at),
        ),
        links={"self": job_url(job.job_id)},
    )
    return json_response(201, created.model_dump(mode="json"))


@app.get(
    "/v1/jobs/<job_id>",
    summary="Read a job's status, and its result URL once it succeeded",
    responses=documented(200, JobView, 404),
)
@tracer.capture_method
def get_job(job_id: str):
    now = time.time()
    job = load_job(job_id, now)
    if not job_rules.result_is_available(job, now):
        return job_response(public_view(job, now))
    lifetime_s = job_rules.result_url_lifetime_s(job, settings(), now)
    url = object_store().presign_download(
        result_key(job_id, job.output_format.extension), lifetime_s, job_rules.download_filename(job)
    )
    return job_response(public_view(job, now, url, now + lifetime_s))


@app.delete(
    "/v1/jobs/<job_id>",
    summary="Cancel a job that has not started processing",
    responses=documented(200, JobView, 404, 409),
)
@tracer.capture_method
def cancel_job(job_id: str):
    now = time.time()
    load_job(job_id, now)
    cancelled = job_repository().transition(job_id, job_rules.CANCELLABLE_STATUSES, JobStatus.CANCELLED, now)
    if cancelled is None:
        current = load_job(job_id, now)
        raise JobRejected(
            ErrorCode.NOT_CANCELLABLE,
            f"the job is {job_rules.effective_status(current, now)}; "
            "only a job that has not started processing can be cancelled",
        )
    metrics.add_metric(name="JobsCancelled", unit=MetricUnit.Count, value=1)
    return job_response(public_view(cancelled, now))


@app.get("/v1/health", summary="Liveness of the API", responses=documented(200, Health))
def health():
    return json_response(200, {"status": "ok"})


@app.get(
    "/v1/limits",
    summary="What a job may be: upload size and types, image limits, output formats, final statuses",
    responses=documented(200, ServiceLimits),
)
def limits():
    return json_response(200, service_limits(settings()))


@app.get(
    "/v1/models",
    summary="The models a job may name, what each is good for, and the deployment's default",
    responses=documented(200, ModelCatalogue),
)
def models():
    return json_response(200, model_catalogue(settings().default_model))


def openapi_components() -> dict:
    """The schemas Powertools does not see: the request body, which read_body validates, and the
    output options, which the domain checks and describes."""
    schema = CreateJobBody.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "CreateJobBody": schema, "OutputOptions": OUTPUT_OPTIONS_SCHEMA}


# Where the document holds output options: the request's, and the result's echo (a plain dict to pydantic).
OUTPUT_OPTIONS_HOLDERS = ("CreateJobBody", "JobResult")


def drop_unreferenced_schemas(document: dict) -> None:
    """Powertools adds its validation-error schemas even with validation off; this API answers
    every refusal with ErrorBody, so the document keeps only the schemas something refers to."""
    schemas = document["components"]["schemas"]
    while unused := [name for name in schemas if f'"#/components/schemas/{name}"' not in json.dumps(document)]:
        for name in unused:
            del schemas[name]


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_document():
    schema = app.get_openapi_schema(title="Cutout API", version="1.0.0", servers=[Server(url=api_base_url())])
    document = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    schemas = document["components"]["schemas"]
    schemas.update(openapi_components())
    for holder in OUTPUT_OPTIONS_HOLDERS:
        schemas[holder]["properties"]["output"] = {"$ref": "#/components/schemas/OutputOptions"}
    drop_unreferenced_schemas(document)
    return json_response(200, document)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
