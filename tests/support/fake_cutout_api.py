"""The Cutout API and its S3 bucket as the README documents them, served on 127.0.0.1 for the
clients' tests (the CLI's and the page's), with faults planned per route before the real answer:
a 429 with Retry-After, a 503, an S3 <Error>, a reset connection. Every request is recorded with
its arrival time, so a test can count the tries and measure the waits between them at the server.
GET /v1/limits answers the service's own limits body, which a test may change; GET /v1/models the
domain's model catalogue with the deployment's default marked. The `output` and `model` of
POST /v1/jobs are checked by the domain as the API checks them (a 400 naming each bad field) and the
body kept as sent; the job and its result name the model run, and the result echoes the applied
options and a subject box of the whole image.

POST /v1/batches creates its jobs all or nothing (the domain's rules, `jobs.<i>.<field>` problems),
GET /v1/batches/{id} reads them with the domain's batch status and counts, and GET /v1/jobs lists
them newest first. A submit with an Idempotency-Key is made once: the same key and body answer
the same job or batch, another body 409 idempotency_conflict, and a refusal records nothing.
Given an api_key, every API route refuses a request without it (x-api-key) as API Gateway does:
403 forbidden. A fault planned as AfterWork(answer) lets the call do its work, then answers
that instead: the client sees a failure of a call that was made.
"""

import io
import itertools
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from PIL import Image

from cutout.batches import all_or_nothing, batch_status, status_counts
from cutout.browser import CorsPolicy
from cutout.clients import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, decode_cursor, encode_cursor
from cutout.errors import ErrorCode, JobRejected
from cutout.idempotency import IDEMPOTENCY_HEADER
from cutout.jobs import JobStatus
from cutout.limits import service_limits
from cutout.models import chosen_model, model_catalogue
from cutout.output import OutputOptions
from cutout.settings import Settings

LIMITS, MODELS, CREATE, POLL, UPLOAD, RESULT = "limits", "models", "create", "poll", "upload", "result"
LIST, BATCH, BATCH_POLL = "list", "batch", "batch_poll"
ROUTES = {
    ("GET", "v1/limits"): LIMITS,
    ("GET", "v1/models"): MODELS,
    ("POST", "v1/jobs"): CREATE,
    ("GET", "v1/jobs"): LIST,
    ("GET", "v1/jobs/"): POLL,
    ("POST", "v1/batches"): BATCH,
    ("GET", "v1/batches/"): BATCH_POLL,
    ("PUT", "uploads/"): UPLOAD,
    ("GET", "results/"): RESULT,
}
# The bucket's routes: presigned, so no API key.
STORAGE_ROUTES = {UPLOAD, RESULT}
API_KEY_HEADER = "x-api-key"
# The statuses of the refusals the fake makes (the API's table, cutout_api.handler.HTTP_STATUS, is
# not imported: importing the Lambda handler would set up its tracer in the clients' tests).
REFUSAL_STATUS = {ErrorCode.BAD_REQUEST: 400, ErrorCode.IDEMPOTENCY_CONFLICT: 409}
# The listing cursor's position: the last job of the page.
CURSOR_KEYS = frozenset({"job_id"})
# A client that sends fewer bytes than it declared gets its connection dropped, not a hang.
SOCKET_TIMEOUT_S = 5
RESULT_URL_TTL_S = 300


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    # A value may be a function, called when the answer is sent (an HTTP date relative to then).
    headers: dict[str, str | Callable[[], str]] = field(default_factory=dict)


RESET = Answer(0)  # no answer: the connection is reset (RST) once the request is read


@dataclass(frozen=True)
class AfterWork:
    """A planned fault sent after the real answer was made (a job or batch created): what a client
    sees when a gateway times out, or the connection drops, after the function ran."""

    answer: Answer


def json_answer(status: int, body: dict) -> Answer:
    return Answer(status, json.dumps(body).encode())


def api_error(
    status: int,
    code: str,
    message: str,
    retry_after: str | Callable[[], str] | None = None,
    details: dict | None = None,
) -> Answer:
    error = {"code": code, "message": message} | ({"details": details} if details is not None else {})
    body = json.dumps({"error": error}).encode()
    return Answer(status, body, headers={"Retry-After": retry_after} if retry_after is not None else {})


def forbidden() -> Answer:
    """API Gateway's INVALID_API_KEY gateway response, in the API's error body."""
    return api_error(403, ErrorCode.FORBIDDEN, "Forbidden")


def throttled(retry_after: str | Callable[[], str] | None = None) -> Answer:
    """API Gateway's 429 over the stage's throttle, in the API's error body."""
    return api_error(429, ErrorCode.TOO_MANY_REQUESTS, "Too Many Requests", retry_after)


def unavailable(retry_after: str | None = None) -> Answer:
    return api_error(503, ErrorCode.INTERNAL_ERROR, "Service Unavailable", retry_after)


def s3_error(status: int, code: str, message: str) -> Answer:
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Answer(status, xml.encode(), "application/xml")


def http_date_in(seconds: float) -> Callable[[], str]:
    """A Retry-After HTTP date that many seconds after the answer is sent (whole seconds, rounded down)."""
    return lambda: formatdate(time.time() + seconds, usegmt=True)


@dataclass
class Job:
    job_id: str
    content_type: str
    content_length: int
    output: dict  # the request's `output` object as sent ({} when absent)
    options: OutputOptions
    model: str  # the model it runs: the one named, else the default
    body: dict  # the POST /v1/jobs body as sent (a batch's item)
    batch_id: str | None = None
    uploaded: bytes | None = None
    polls_since_upload: int = 0


@dataclass(frozen=True)
class Submit:
    """What an Idempotency-Key was first sent with, and the id of what it made."""

    body: dict
    made_id: str


@dataclass(frozen=True)
class Arrival:
    route: str | None
    method: str
    path: str
    at: float  # time.monotonic()
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


class FakeCutoutApi(ThreadingHTTPServer):
    """api_key: the one key API calls must send (None: a deployment with api_auth none)."""

    daemon_threads = True

    def __init__(self, api_key: str | None = None):
        super().__init__(("127.0.0.1", 0), FakeCutoutHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.api_key = api_key
        self.lock = threading.Lock()
        self.jobs: dict[str, Job] = {}  # in creation order
        self.batches: dict[str, list[str]] = {}  # batch id -> its job ids
        self.submits: dict[tuple[str, str], Submit] = {}  # (route, Idempotency-Key) -> what it made
        self.arrivals: list[Arrival] = []
        self.faults: dict[str, Iterator[Answer]] = {}
        self.limits = service_limits(Settings())
        self.serve_models(Settings())
        # A status every uploaded job is held at while this is set, as a slow stage would.
        self.hold_at: str | None = None

    def serve_limits(self, settings: Settings) -> None:
        """Answer GET /v1/limits with these settings' limits (e.g. a smaller max_upload_bytes).
        A test may also change self.limits itself: list other upload types or terminal statuses."""
        self.limits = service_limits(settings)

    def serve_models(self, settings: Settings) -> None:
        """Answer GET /v1/models, and give jobs that name no model, these settings' default_model."""
        self.default_model = settings.default_model
        self.models = model_catalogue(settings.default_model)

    def plan(self, route: str, answers: Iterable[Answer]) -> None:
        """Answer the next requests of route with these, in turn, before the real answers
        (itertools.repeat(answer) for every one)."""
        self.faults[route] = iter(answers)

    def headers(self, route: str, name: str) -> list[str | None]:
        """The header name (any case) of each request of route, None where it was not sent."""
        with self.lock:
            return [arrival.headers.get(name.lower()) for arrival in self.arrivals if arrival.route == route]

    def times(self, route: str) -> list[float]:
        with self.lock:
            return [arrival.at for arrival in self.arrivals if arrival.route == route]

    def gaps(self, route: str) -> list[float]:
        """Seconds between one request of route and the next, as measured here."""
        times = self.times(route)
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def next_fault(self, route: str | None) -> Answer | AfterWork | None:
        return next(self.faults.get(route, iter(())), None)

    def refuses_key(self, route: str | None, headers: dict[str, str]) -> bool:
        return self.api_key is not None and route not in STORAGE_ROUTES and headers.get(API_KEY_HEADER) != self.api_key

    def new_job(self, body: dict, batch_id: str | None = None) -> Job:
        """A job for a POST /v1/jobs body, checked by the domain as the API checks it (JobRejected)."""
        output = body.get("output", {})
        options = OutputOptions.from_request(output)
        model = chosen_model(body.get("model"), self.default_model)
        return Job(
            str(uuid.uuid4()), body["content_type"], body["content_length"], output, options, model, body, batch_id
        )

    def created_view(self, job: Job) -> dict:
        """A job as POST /v1/jobs answers it; a replay once the job has its upload has no upload."""
        upload = None
        if job.uploaded is None:
            upload = {
                "method": "PUT",
                "url": f"{self.url}/uploads/{job.job_id}",
                "headers": {"Content-Type": job.content_type, "Content-Length": str(job.content_length)},
                "expires_at": "2099-01-01T00:00:00Z",
            }
        return {
            "job_id": job.job_id,
            "status": self.status_of(job),
            "upload": upload,
            "links": {"self": f"/v1/jobs/{job.job_id}"},
        }

    def submit_once(self, route: str, key: str | None, body: dict, make: Callable[[], str]) -> str:
        """make()'s id, made once per Idempotency-Key: the same key again answers the first id,
        with another body JobRejected (409). make() raising JobRejected records nothing."""
        if key is None:
            return make()
        first = self.submits.get((route, key))
        if first is None:
            first = self.submits[(route, key)] = Submit(body, make())
        elif first.body != body:
            raise JobRejected(
                ErrorCode.IDEMPOTENCY_CONFLICT,
                f"this {IDEMPOTENCY_HEADER} was used with a different request body; use a new key for a new request",
            )
        return first.made_id

    def create(self, body: dict, idempotency_key: str | None) -> Answer:
        def make() -> str:
            job = self.new_job(body)
            self.jobs[job.job_id] = job
            return job.job_id

        job_id = self.submit_once(CREATE, idempotency_key, body, make)
        return json_answer(201, self.created_view(self.jobs[job_id]))

    def create_batch(self, body: dict, idempotency_key: str | None) -> Answer:
        items = body.get("jobs")
        max_batch_jobs = self.limits["max_batch_jobs"]
        if not isinstance(items, list) or not 1 <= len(items) <= max_batch_jobs:
            raise JobRejected(
                ErrorCode.BAD_REQUEST,
                "the batch is not valid: no job was created",
                {"problems": [{"field": "jobs", "problem": f"must hold 1 to {max_batch_jobs} jobs"}]},
            )

        def make() -> str:
            batch_id = str(uuid.uuid4())
            jobs = all_or_nothing(items, lambda item: self.new_job(item, batch_id))
            self.jobs |= {job.job_id: job for job in jobs}
            self.batches[batch_id] = [job.job_id for job in jobs]
            return batch_id

        batch_id = self.submit_once(BATCH, idempotency_key, body, make)
        jobs = [self.created_view(self.jobs[job_id]) for job_id in self.batches[batch_id]]
        return json_answer(201, {"batch_id": batch_id, "jobs": jobs, "links": {"self": f"/v1/batches/{batch_id}"}})

    def batch_view(self, batch_id: str) -> Answer:
        job_ids = self.batches.get(batch_id)
        if job_ids is None:
            return api_error(404, ErrorCode.NOT_FOUND, f"no batch {batch_id!r}: unknown, malformed or expired")
        statuses = [JobStatus(self.status_of(self.jobs[job_id])) for job_id in job_ids]
        return json_answer(
            200,
            {
                "batch_id": batch_id,
                "status": batch_status(statuses),
                "counts": status_counts(statuses),
                "jobs": [
                    {"job_id": job_id, "status": status} for job_id, status in zip(job_ids, statuses, strict=True)
                ],
            },
        )

    def list_jobs(self, query: dict[str, list[str]]) -> Answer:
        """The jobs newest first, a page at a time; only a deployment with API keys lists them."""
        if self.api_key is None:
            return api_error(404, ErrorCode.NOT_FOUND, "listing jobs needs API keys: this deployment has api_auth none")
        status = query.get("status", [None])[0]
        limit = int(query.get("limit", [DEFAULT_LIST_LIMIT])[0])
        if not 1 <= limit <= MAX_LIST_LIMIT:
            return api_error(
                400, ErrorCode.BAD_REQUEST, f"limit must be an integer 1–{MAX_LIST_LIMIT}", {"field": "limit"}
            )
        newest_first = list(reversed(self.jobs))
        cursor = query.get("cursor", [None])[0]
        start = newest_first.index(decode_cursor(cursor, CURSOR_KEYS)["job_id"]) + 1 if cursor else 0
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        views = [self.view_of(self.jobs[job_id]) for job_id in page]
        return json_answer(
            200,
            {
                "jobs": [view for view in views if status in (None, view["status"])],
                "next_cursor": encode_cursor({"job_id": page[-1]}) if more else None,
            },
        )

    def upload(self, job_id: str, content_type: str | None, body: bytes) -> Answer:
        """S3 checks what the presigned URL signed: the exact type and length."""
        job = self.jobs.get(job_id)
        if job is None:
            return s3_error(403, "AccessDenied", "Request has expired")
        if content_type != job.content_type or len(body) != job.content_length:
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        job.uploaded = body
        return Answer(200)

    def status_of(self, job: Job) -> str:
        """awaiting_upload until the bytes arrive, then processing until its second poll, then
        succeeded (or hold_at while that is set)."""
        if job.uploaded is None:
            return "awaiting_upload"
        if self.hold_at is not None:
            return self.hold_at
        return "processing" if job.polls_since_upload <= 1 else "succeeded"

    def job_view(self, job_id: str) -> Answer:
        """The job as GET /v1/jobs/{id} answers it; each poll after the upload moves it on."""
        job = self.jobs.get(job_id)
        if job is None:
            return api_error(404, ErrorCode.NOT_FOUND, f"no job '{job_id}'")
        if job.uploaded is not None and self.hold_at is None:
            job.polls_since_upload += 1
        return json_answer(200, self.view_of(job))

    def view_of(self, job: Job) -> dict:
        """The job view, with the uploaded image as its result once it succeeded."""
        status, result = self.status_of(job), None
        if status == "succeeded":
            with Image.open(io.BytesIO(job.uploaded)) as image:
                width, height = image.size
            result = {
                "url": f"{self.url}/results/{job.job_id}",
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + RESULT_URL_TTL_S)),
                "format": job.options.format.value,
                "content_type": job.content_type,
                "width": width,
                "height": height,
                "bytes": len(job.uploaded),
                "subject": {"x": 0, "y": 0, "width": width, "height": height},
                "output": job.options.to_json(),
                "model": job.model,
            }
        stages = {"awaiting_upload": "2026-01-01T00:00:00Z", status: "2026-01-01T00:00:01Z"}
        return {
            "job_id": job.job_id,
            "status": status,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:01Z",
            "stages": stages,
            "model": job.model,
            "error": None,
            "result": result,
        }

    def result(self, job_id: str) -> Answer:
        job = self.jobs.get(job_id)
        if job is None or job.uploaded is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return Answer(200, job.uploaded, job.content_type)


def route_of(method: str, path: str) -> tuple[str | None, str]:
    """The route and the id after its prefix ("" for a route without one)."""
    for (route_method, prefix), route in ROUTES.items():
        if method == route_method and (path == prefix if not prefix.endswith("/") else path.startswith(prefix)):
            return route, path[len(prefix) :]
    return None, ""


class FakeCutoutHandler(BaseHTTPRequestHandler):
    server: FakeCutoutApi
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format, *args):
        pass

    def do_OPTIONS(self):
        self.send(
            Answer(
                204,
                headers={
                    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
                    "Access-Control-Allow-Headers": ", ".join(CorsPolicy(origins=("*",)).allow_headers),
                },
            )
        )

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")

    def do_PUT(self):
        self.answer("PUT")

    def answer(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        path = path.lstrip("/")
        route, job_id = route_of(method, path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        server = self.server
        with server.lock:
            server.arrivals.append(Arrival(route, method, path, time.monotonic(), headers))
            # API Gateway checks the key before anything else answers.
            answer = forbidden() if server.refuses_key(route, headers) else server.next_fault(route)
            if isinstance(answer, AfterWork):
                self.real_answer(route, job_id, body, parse_qs(query))
                answer = answer.answer
            elif answer is None:
                answer = self.real_answer(route, job_id, body, parse_qs(query))
        if answer is RESET:
            self.reset()
        else:
            self.send(answer)

    def real_answer(self, route: str | None, job_id: str, body: bytes, query: dict[str, list[str]]) -> Answer:
        server = self.server
        idempotency_key = self.headers.get(IDEMPOTENCY_HEADER)
        try:
            if route == LIMITS:
                return json_answer(200, server.limits)
            if route == MODELS:
                return json_answer(200, server.models)
            if route == CREATE:
                return server.create(json.loads(body), idempotency_key)
            if route == BATCH:
                return server.create_batch(json.loads(body), idempotency_key)
            if route == LIST:
                return server.list_jobs(query)
            if route == UPLOAD:
                return server.upload(job_id, self.headers.get("Content-Type"), body)
            if route == POLL:
                return server.job_view(job_id)
            if route == BATCH_POLL:
                return server.batch_view(job_id)
            if route == RESULT:
                return server.result(job_id)
        except JobRejected as refused:
            return api_error(REFUSAL_STATUS[refused.code], refused.code, refused.message, details=refused.details)
        return api_error(404, ErrorCode.NOT_FOUND, "no such route")

    def send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        headers = {
            "Access-Control-Allow-Origin": "*",
            # What a server must send for a page on another origin to read its Retry-After.
            "Access-Control-Expose-Headers": "Retry-After",
            "Content-Type": answer.content_type,
            "Content-Length": str(len(answer.body)),
        }
        for name, value in (headers | answer.headers).items():
            self.send_header(name, value() if callable(value) else value)
        self.end_headers()
        self.wfile.write(answer.body)

    def reset(self) -> None:
        """Close with SO_LINGER 0, so the client gets a TCP RST instead of an answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


@contextmanager
def serving(server: ThreadingHTTPServer):
    """server answering from a thread until the block ends, then stopped and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
