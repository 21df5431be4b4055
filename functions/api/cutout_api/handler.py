"""API Gateway (REST, proxy) entry point: create a job or a batch of them, read, list and cancel
them, and what the service accepts."""

import base64
import functools
import json
import time
from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cutout import jobs as job_rules
from cutout.aws import (
    LISTING_POSITION_KEYS,
    batch_repository,
    idempotency_store,
    job_repository,
    object_store,
    operator_stats,
    settings,
    usage_plans_of,
)
from cutout.batches import Batch, BatchStatus, all_or_nothing, batch_status, status_counts
from cutout.browser import ANSWER_HEADERS, CorsPolicy
from cutout.clients import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    ApiAuth,
    ListQuery,
    caller_of,
    decode_cursor,
    encode_cursor,
    may_access,
)
from cutout.errors import ErrorCode, ErrorDetail, JobRejected
from cutout.formats import ACCEPTED_UPLOAD_TYPES
from cutout.idempotency import IDEMPOTENCY_HEADER, IDEMPOTENCY_WINDOW_S, MAX_IDEMPOTENCY_KEY_CHARS
from cutout.jobs import Job, JobRequest, JobStatus
from cutout.keys import is_job_id, new_job_id
from cutout.limits import ServiceLimits, service_limits
from cutout.models import MODELS, ModelCatalogue, model_catalogue
from cutout.output import OUTPUT_OPTIONS_SCHEMA, OutputOptions
from cutout.stats import OperatorStats
from cutout.views import JobView, client_view, public_view, view_json
from cutout.webhooks import MAX_CALLBACK_URL_CHARS

logger = Logger()
tracer = Tracer()
metrics = Metrics()

HTTP_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.NOT_CANCELLABLE: 409,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
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
    # Any string to pydantic: the domain says what is wrong with a URL it refuses.
    callback_url: str | None = Field(
        default=None,
        max_length=MAX_CALLBACK_URL_CHARS,
        description="an https URL on a public host, POSTed the job's outcome, signed, when the job ends",
    )


class CreateBatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[CreateJobBody] = Field(
        min_length=1, max_length=settings().max_batch_jobs, description="each job as POST /v1/jobs takes it"
    )


class UploadInstructions(BaseModel):
    method: str
    url: str
    headers: dict[str, str]
    expires_at: str


class CreatedJob(BaseModel):
    job_id: str
    status: JobStatus
    # null only on an idempotent replay once the job no longer takes its upload (it was uploaded,
    # cancelled, or its upload window is over).
    upload: UploadInstructions | None
    links: dict[str, str]


class CreatedBatch(BaseModel):
    batch_id: str
    jobs: list[CreatedJob]
    links: dict[str, str]


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: this is the last")


class BatchJob(BaseModel):
    job_id: str
    status: JobStatus


class BatchView(BaseModel):
    batch_id: str
    status: BatchStatus
    counts: dict[str, int]
    jobs: list[BatchJob]


class Health(BaseModel):
    status: str


OPENAPI_ERROR_DESCRIPTIONS = {
    400: "the request is not valid; `details.problems` names each bad field",
    403: "no API key, or one this API does not know (x-api-key header); on GET /v1/stats, a key of no admin plan",
    404: "no such job or batch: unknown, malformed, expired, or another API key's",
    409: "the job has started processing and can no longer be cancelled; or the Idempotency-Key was "
    "used with another body, or its first request is still in progress",
    413: "the declared image is larger than the upload limit",
    415: "the body is not JSON, or the image type is not accepted",
    429: "over API Gateway's throttle for this route",
    500: "Cutout could not serve this request; try again",
}


def documented(success: int, model: type[BaseModel], *errors: int, public: bool = False) -> dict:
    """The responses a route answers, each with its body: throttling and failure apply to every
    route, and refusing a missing key to every route but the public ones."""
    responses = {success: {"description": "success", "content": {content_types.APPLICATION_JSON: {"model": model}}}}
    for status in (*errors, *(() if public else (403,)), 429, 500):
        responses[status] = {
            "description": OPENAPI_ERROR_DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
    return responses


def json_request_body(schema: str) -> dict:
    """The OpenAPI requestBody of a route whose JSON body read_body validates against a model the
    document holds under components (openapi_components)."""
    reference = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": True, "content": {content_types.APPLICATION_JSON: {"schema": reference}}}}


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


def read_body[Body: BaseModel](model: type[Body], max_bytes: int = MAX_BODY_BYTES) -> Body:
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
    if len(data) > max_bytes:
        raise JobRejected(ErrorCode.BAD_REQUEST, f"the request body is larger than {max_bytes} bytes")
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


def batch_url(batch_id: str) -> str:
    return f"{api_base_url()}/v1/batches/{batch_id}"


def caller() -> str | None:
    """Who the request acts for: its API key's id, from the request context API Gateway fills in."""
    return caller_of(settings().api_auth, app.current_event.request_context.identity.api_key_id)


def job_not_found(job_id: str) -> JobRejected:
    return JobRejected(ErrorCode.NOT_FOUND, f"no job {job_id!r}: unknown, malformed or expired")


def settle(job: Job, now: float) -> Job:
    """The job, first moved on if a deadline passed: a poll never waits on a lost worker or an
    upload that will not come."""
    current, moved_to = job_repository().settle(job, settings(), now)
    if moved_to is not None:
        record_overdue_move(job, moved_to)
    return job if current is None else current  # gone this instant: answer what was read


def record_overdue_move(job: Job, target: JobStatus) -> None:
    logger.warning("moved an overdue job", extra={"job_id": job.job_id, "from": job.status, "to": target})
    metrics.add_metric(name=job_rules.overdue_metric(target), unit=MetricUnit.Count, value=1)


def load_job(job_id: str, now: float) -> Job:
    """The caller's live job, settled; another key's job is as unknown as a missing one."""
    job = job_repository().get(job_id, now) if is_job_id(job_id) else None
    if job is None or not may_access(job.owner, caller()):
        raise job_not_found(job_id)
    return settle(job, now)


def job_response(view: JobView) -> Response:
    return json_response(200, view_json(view))


def job_view(job: Job, now: float) -> JobView:
    return client_view(job, now, settings(), object_store().presign_download)


def created_view(job: Job, now: float) -> CreatedJob:
    """A job as POST answers it: with an upload URL for the rest of its upload window."""
    upload = None
    upload_s = job_rules.upload_seconds_left(job, now)
    if upload_s is not None:
        upload = UploadInstructions(
            method="PUT",
            url=object_store().presign_upload(job.upload_key, job.content_type, job.content_length, upload_s),
            headers={"Content-Type": job.content_type, "Content-Length": str(job.content_length)},
            expires_at=job_rules.iso(job.upload_expires_at),
        )
    return CreatedJob(job_id=job.job_id, status=job.status, upload=upload, links={"self": job_url(job.job_id)})


def job_request(body: CreateJobBody, owner: str | None, batch_id: str | None = None) -> JobRequest:
    return JobRequest(
        content_type=body.content_type,
        content_length=body.content_length,
        output=OutputOptions.from_request(body.output),
        filename=body.filename,
        model=body.model,
        owner=owner,
        batch_id=batch_id,
        callback_url=body.callback_url,
    )


# The key of a submit is its caller's, so two clients never share one, and the route's (the
# function's name, Powertools' key prefix). The body the key first came with is kept to tell a
# retry from a different request.
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[caller, key]",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_WINDOW_S,
)


def idempotency_key() -> str | None:
    key = app.current_event.headers.get(IDEMPOTENCY_HEADER.lower())
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise JobRejected(
            ErrorCode.BAD_REQUEST,
            f"{IDEMPOTENCY_HEADER} must be 1–{MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters",
            {"field": IDEMPOTENCY_HEADER},
        )
    return key


def submit_once(create: Callable[..., dict], owner: str | None, body: BaseModel) -> dict:
    """create's record of what it made (ids), made once per Idempotency-Key: a request that repeats
    a key gets the first one's record, one with another body under it a 409."""
    key = idempotency_key()
    if key is None:
        return create(submit=None)
    once = idempotent_function(
        create, data_keyword_argument="submit", persistence_store=idempotency_store(), config=IDEMPOTENCY
    )
    try:
        return once(submit={"caller": owner, "key": key, "body": body.model_dump(mode="json")})
    except IdempotencyValidationError:
        raise JobRejected(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            f"this {IDEMPOTENCY_HEADER} was used with a different request body; use a new key for a new request",
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise JobRejected(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            f"the first request with this {IDEMPOTENCY_HEADER} is still in progress; retry in a moment",
        ) from None


@app.post(
    "/v1/jobs",
    summary="Create a job and get the URL to upload its image to",
    responses=documented(201, CreatedJob, 400, 409, 413, 415),
    openapi_extensions=json_request_body("CreateJobBody"),
)
@tracer.capture_method
def create_job():
    owner = caller()
    body = read_body(CreateJobBody)
    # Validated before the idempotency record: a refused request leaves no key behind.
    job = job_rules.new_job(new_job_id(), job_request(body, owner), settings(), time.time())

    def create(submit) -> dict:
        job_repository().create(job)
        metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
        return {"job_id": job.job_id}

    job_id = submit_once(create, owner, body)["job_id"]
    now = time.time()
    current = job if job_id == job.job_id else job_repository().get(job_id, now)
    if current is None:  # the first request's job outlived its retention before this retry
        raise job_not_found(job_id)
    return json_response(201, created_view(settle(current, now), now).model_dump(mode="json"))


@app.post(
    "/v1/batches",
    summary="Create up to max_batch_jobs jobs at once (all or none), each with its upload URL",
    responses=documented(201, CreatedBatch, 400, 409, 415),
    openapi_extensions=json_request_body("CreateBatchBody"),
)
@tracer.capture_method
def create_batch():
    owner = caller()
    body = read_body(CreateBatchBody, MAX_BODY_BYTES * settings().max_batch_jobs)
    now, batch_id = time.time(), new_job_id()
    jobs = all_or_nothing(
        body.jobs, lambda item: job_rules.new_job(new_job_id(), job_request(item, owner, batch_id), settings(), now)
    )
    batch = Batch(
        batch_id=batch_id,
        created_at=job_rules.iso(now),
        job_ids=[job.job_id for job in jobs],
        expires_at=int(now + settings().job_retention_s),
        owner=owner,
    )

    def create(submit) -> dict:
        job_repository().create_many(jobs)
        batch_repository().create(batch)
        metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=len(jobs))
        return {"batch_id": batch_id}

    created_id = submit_once(create, owner, body)["batch_id"]
    now = time.time()
    if created_id == batch_id:
        created = jobs
    else:
        stored = load_batch(created_id, now)
        found = job_repository().get_many(stored.job_ids, now)
        created = [settle(found[job_id], now) for job_id in stored.job_ids if job_id in found]
    answer = CreatedBatch(
        batch_id=created_id,
        jobs=[created_view(job, now) for job in created],
        links={"self": batch_url(created_id)},
    )
    return json_response(201, answer.model_dump(mode="json"))


def batch_not_found(batch_id: str) -> JobRejected:
    return JobRejected(ErrorCode.NOT_FOUND, f"no batch {batch_id!r}: unknown, malformed or expired")


def load_batch(batch_id: str, now: float) -> Batch:
    batch = batch_repository().get(batch_id, now) if is_job_id(batch_id) else None
    if batch is None or not may_access(batch.owner, caller()):
        raise batch_not_found(batch_id)
    return batch


@app.get(
    "/v1/batches/<batch_id>",
    summary="Read a batch: running until every job is final, then done; each job's status",
    responses=documented(200, BatchView, 404),
)
@tracer.capture_method
def get_batch(batch_id: str):
    now = time.time()
    batch = load_batch(batch_id, now)
    found = job_repository().get_many(batch.job_ids, now)
    # A job gone from the table outlived its retention: it reads expired, as a poll of it would.
    statuses = [
        job_rules.effective_status(settle(found[job_id], now), now) if job_id in found else JobStatus.EXPIRED
        for job_id in batch.job_ids
    ]
    view = BatchView(
        batch_id=batch.batch_id,
        status=batch_status(statuses),
        counts=status_counts(statuses),
        jobs=[BatchJob(job_id=job_id, status=status) for job_id, status in zip(batch.job_ids, statuses, strict=True)],
    )
    return json_response(200, view.model_dump(mode="json"))


def list_query() -> ListQuery:
    """GET /v1/jobs's query, or a 400 naming the bad parameter."""
    params = app.current_event.query_string_parameters or {}
    unknown = sorted(set(params) - {"status", "limit", "cursor"})
    if unknown:
        raise JobRejected(ErrorCode.BAD_REQUEST, f"unknown query parameter {unknown[0]!r}", {"field": unknown[0]})
    status = params.get("status")
    if status is not None and status not in JobStatus:
        raise JobRejected(ErrorCode.BAD_REQUEST, f"status must be one of {', '.join(JobStatus)}", {"field": "status"})
    raw_limit = params.get("limit", str(DEFAULT_LIST_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIST_LIMIT):
        raise JobRejected(ErrorCode.BAD_REQUEST, f"limit must be an integer 1–{MAX_LIST_LIMIT}", {"field": "limit"})
    cursor = params.get("cursor")
    start_after = decode_cursor(cursor, LISTING_POSITION_KEYS) if cursor is not None else None
    return ListQuery(status=status, limit=int(raw_limit), start_after=start_after)


@app.get(
    "/v1/jobs",
    summary="List the caller's jobs, newest first, a page at a time (API keys only)",
    responses=documented(200, JobPage, 400, 404),
)
@tracer.capture_method
def list_jobs():
    owner = caller()
    if settings().api_auth == ApiAuth.NONE:
        raise JobRejected(ErrorCode.NOT_FOUND, "listing jobs needs API keys: this deployment has api_auth none")
    query = list_query()
    now = time.time()
    page, position = job_repository().list_owned(owner, query.limit, query.start_after)
    views = [job_view(settle(job, now), now) for job in page if job_rules.is_live(job, now)]
    listed = JobPage(
        jobs=[view for view in views if query.status in (None, view.status)],
        next_cursor=encode_cursor(position) if position else None,
    )
    return json_response(200, listed.model_dump(mode="json"))


@app.get(
    "/v1/jobs/<job_id>",
    summary="Read a job's status, and its result URL once it succeeded",
    responses=documented(200, JobView, 404),
)
@tracer.capture_method
def get_job(job_id: str):
    now = time.time()
    return job_response(job_view(load_job(job_id, now), now))


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


@functools.cache
def operator_stats_json() -> TypeAdapter:
    """Built on the first stats call: ~10 ms that every other cold start would pay for an admin route."""
    return TypeAdapter(OperatorStats)


@app.get(
    "/v1/stats",
    summary="Queues and job counts of the last hour and day, for operators (keys of an admin usage plan only)",
    responses=documented(200, OperatorStats, 404),
)
@tracer.capture_method
def stats():
    owner = caller()
    if settings().api_auth == ApiAuth.NONE:
        raise JobRejected(ErrorCode.NOT_FOUND, "stats need API keys: this deployment has api_auth none")
    if not usage_plans_of(owner) & settings().admin_plans:
        raise JobRejected(ErrorCode.FORBIDDEN, "GET /v1/stats needs a key of an admin usage plan")
    current = operator_stats(settings().watched_queues, settings().stats_table_name, time.time())
    return json_response(200, operator_stats_json().dump_python(current, mode="json"))


# OpenAPI's way to say a route needs no credentials: one requirement with no scheme in it.
NO_CREDENTIALS = [{}]


@app.get(
    "/v1/health",
    summary="Liveness of the API",
    responses=documented(200, Health, public=True),
    security=NO_CREDENTIALS,
)
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
    job_schema = CreateJobBody.model_json_schema(ref_template="#/components/schemas/{model}")
    batch_schema = CreateBatchBody.model_json_schema(ref_template="#/components/schemas/{model}")
    batch_schema.pop("$defs", None)
    return {
        **job_schema.pop("$defs", {}),
        "CreateJobBody": job_schema,
        "CreateBatchBody": batch_schema,
        "OutputOptions": OUTPUT_OPTIONS_SCHEMA,
    }


# Where the document holds output options: the request's, and the result's echo (a plain dict to pydantic).
OUTPUT_OPTIONS_HOLDERS = ("CreateJobBody", "JobResult")


def drop_unreferenced_schemas(document: dict) -> None:
    """Powertools adds its validation-error schemas even with validation off; this API answers
    every refusal with ErrorBody, so the document keeps only the schemas something refers to."""
    schemas = document["components"]["schemas"]
    while unused := [name for name in schemas if f'"#/components/schemas/{name}"' not in json.dumps(document)]:
        for name in unused:
            del schemas[name]


API_KEY_SCHEME = "ApiKey"


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_document():
    keys = settings().api_auth == ApiAuth.API_KEY
    schema = app.get_openapi_schema(
        title="Cutout API",
        version="1.0.0",
        servers=[Server(url=api_base_url())],
        security_schemes={API_KEY_SCHEME: APIKey(name="x-api-key", in_=APIKeyIn.header)} if keys else None,
        security=[{API_KEY_SCHEME: []}] if keys else None,
    )
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
    # Powertools times out a submit's in-progress record by the invocation's remaining time.
    IDEMPOTENCY.register_lambda_context(context)
    return app.resolve(event, context)
