"""The Cutout API and its S3 bucket as the README documents them, served on 127.0.0.1 for the
clients' tests (the CLI's and the page's), with faults planned per route before the real answer:
a 429 with Retry-After, a 503, an S3 <Error>, a reset connection. Every request is recorded with
its arrival time, so a test can count the tries and measure the waits between them at the server.
GET /v1/limits answers the service's own limits body, which a test may change; GET /v1/models the
domain's model catalogue with the deployment's default marked. The `output` and `model` of
POST /v1/jobs are checked by the domain as the API checks them (a 400 naming each bad field) and the
body kept as sent; the job and its result name the model run, and the result echoes the applied
options and a subject box of the whole image.
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

from PIL import Image

from cutout.errors import ErrorCode, JobRejected
from cutout.limits import service_limits
from cutout.models import chosen_model, model_catalogue
from cutout.output import OutputOptions
from cutout.settings import Settings

LIMITS, MODELS, CREATE, POLL, UPLOAD, RESULT = "limits", "models", "create", "poll", "upload", "result"
ROUTES = {
    ("GET", "v1/limits"): LIMITS,
    ("GET", "v1/models"): MODELS,
    ("POST", "v1/jobs"): CREATE,
    ("GET", "v1/jobs/"): POLL,
    ("PUT", "uploads/"): UPLOAD,
    ("GET", "results/"): RESULT,
}
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
    body: dict  # the POST /v1/jobs body as sent
    uploaded: bytes | None = None
    polls_since_upload: int = 0


@dataclass(frozen=True)
class Arrival:
    route: str | None
    method: str
    path: str
    at: float  # time.monotonic()


class FakeCutoutApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeCutoutHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
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

    def times(self, route: str) -> list[float]:
        with self.lock:
            return [arrival.at for arrival in self.arrivals if arrival.route == route]

    def gaps(self, route: str) -> list[float]:
        """Seconds between one request of route and the next, as measured here."""
        times = self.times(route)
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def next_fault(self, route: str | None) -> Answer | None:
        return next(self.faults.get(route, iter(())), None)

    def create(self, body: dict) -> Answer:
        output = body.get("output", {})
        try:
            options = OutputOptions.from_request(output)
            model = chosen_model(body.get("model"), self.default_model)
        except JobRejected as refused:
            return api_error(400, refused.code, refused.message, details=refused.details)
        job = Job(str(uuid.uuid4()), body["content_type"], body["content_length"], output, options, model, body)
        self.jobs[job.job_id] = job
        upload = {
            "method": "PUT",
            "url": f"{self.url}/uploads/{job.job_id}",
            "headers": {"Content-Type": job.content_type, "Content-Length": str(job.content_length)},
            "expires_at": "2099-01-01T00:00:00Z",
        }
        return json_answer(
            201,
            {
                "job_id": job.job_id,
                "status": "awaiting_upload",
                "upload": upload,
                "links": {"self": f"/v1/jobs/{job.job_id}"},
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

    def job_view(self, job_id: str) -> Answer:
        """awaiting_upload until the bytes arrive, then processing once, then succeeded with the
        uploaded image as its result."""
        job = self.jobs.get(job_id)
        if job is None:
            return api_error(404, ErrorCode.NOT_FOUND, f"no job '{job_id}'")
        status, result = "awaiting_upload", None
        if job.uploaded is not None and self.hold_at is not None:
            status = self.hold_at
        elif job.uploaded is not None:
            job.polls_since_upload += 1
            status = "processing" if job.polls_since_upload == 1 else "succeeded"
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
        return json_answer(
            200,
            {
                "job_id": job.job_id,
                "status": status,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:01Z",
                "stages": stages,
                "model": job.model,
                "error": None,
                "result": result,
            },
        )

    def result(self, job_id: str) -> Answer:
        job = self.jobs.get(job_id)
        if job is None or job.uploaded is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return Answer(200, job.uploaded, job.content_type)


def route_of(method: str, path: str) -> tuple[str | None, str]:
    """The route and the id after its prefix ("" for POST /v1/jobs)."""
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
                    "Access-Control-Allow-Headers": "Content-Type",
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
        path = self.path.split("?")[0].lstrip("/")
        route, job_id = route_of(method, path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        with server.lock:
            server.arrivals.append(Arrival(route, method, path, time.monotonic()))
            answer = server.next_fault(route)
            if answer is None:
                answer = self.real_answer(route, job_id, body)
        if answer is RESET:
            self.reset()
        else:
            self.send(answer)

    def real_answer(self, route: str | None, job_id: str, body: bytes) -> Answer:
        server = self.server
        if route == LIMITS:
            return json_answer(200, server.limits)
        if route == MODELS:
            return json_answer(200, server.models)
        if route == CREATE:
            return server.create(json.loads(body))
        if route == UPLOAD:
            return server.upload(job_id, self.headers.get("Content-Type"), body)
        if route == POLL:
            return server.job_view(job_id)
        if route == RESULT:
            return server.result(job_id)
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
