"""The Cutout HTTP API exactly as the README documents it: models, create (one job or a batch),
upload, poll, download, cancel."""

import itertools
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from xml.etree import ElementTree

import requests

# (connect, read) for one HTTP call, so that no single call can hang the command.
REQUEST_TIMEOUT_S = (10, 60)
FIRST_POLL_DELAY_S = 0.5
MAX_POLL_DELAY_S = 5.0
POLL_BACKOFF = 1.5
DOWNLOAD_CHUNK_BYTES = 1 << 16
# A throttled (429) or failing (5xx) answer is tried again, up to MAX_ATTEMPTS sends in all.
MAX_ATTEMPTS = 6
FIRST_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
# How long one call may keep retrying when the caller has no deadline of its own (status, cancel).
CALL_RETRY_BUDGET_S = 60.0

# The header that carries the API key on every API call (never on the presigned S3 URLs).
API_KEY_HEADER = "x-api-key"
# A submit sent with this header is made once however often it is sent: its retries are safe.
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The API's code for a key whose first request is still running (the CLI never reuses a key with
# another body, so to it this only ever means "not yet": wait and send again).
IDEMPOTENCY_CONFLICT = "idempotency_conflict"
FORBIDDEN = "forbidden"

RetryListener = Callable[[str, float], None]


def is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def is_idempotency_conflict(response: requests.Response) -> bool:
    return response.status_code == 409 and ApiError.from_response(response).code == IDEMPOTENCY_CONFLICT


def retry_after_s(value: str | None) -> float | None:
    """The wait a Retry-After header asks for, given as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_s(attempt: int) -> float:
    """Exponential in the attempts made so far, with jitter so that throttled clients do not come back in step."""
    ceiling = min(FIRST_RETRY_DELAY_S * 2 ** (attempt - 1), MAX_RETRY_DELAY_S)
    return ceiling * random.uniform(0.5, 1.0)


def retry_wait_s(attempts: int, deadline: float, asked_s: float | None) -> float | None:
    """How long to wait before the next attempt (what the server asked for, else a backoff), or
    None when the attempts are used up or the wait would end past deadline."""
    if attempts >= MAX_ATTEMPTS:
        return None
    wait_s = backoff_s(attempts) if asked_s is None else asked_s
    return wait_s if time.monotonic() + wait_s <= deadline else None


def problems_text(problems: list[dict]) -> str:
    """A 400's details.problems in words: `output.max_side must be ...; output.crop_margin ...`."""
    return "; ".join(f"{problem['field']} {problem['problem']}" for problem in problems)


class ApiError(Exception):
    """A refusal from the API ({"error": {"code", "message", "details"?}}; a 400's details.problems
    name each bad field and are part of the message) or from S3 (an XML <Error>)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_response(cls, response: requests.Response) -> "ApiError":
        try:
            body = response.json()
        except ValueError:
            body = None
        try:
            error = body["error"]
            problems = (error.get("details") or {}).get("problems")
            message = f"{error['message']}: {problems_text(problems)}" if problems else error["message"]
            return cls(response.status_code, error["code"], message)
        except (KeyError, TypeError, AttributeError):
            pass
        # API Gateway's own default body where no gateway response reshapes it (LocalStack's too).
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return cls(response.status_code, f"http_{response.status_code}", body["message"])
        try:
            root = ElementTree.fromstring(response.content)
            return cls(response.status_code, root.findtext("Code", "s3_error"), root.findtext("Message", ""))
        except ElementTree.ParseError:
            return cls(response.status_code, f"http_{response.status_code}", response.text[:200].strip())


class JobTimedOut(Exception):
    def __init__(self, job: dict):
        super().__init__(f"timed out with the job still {job['status']}")
        self.job = job


class ProgressReader:
    """A file for requests to stream, reporting the bytes sent so far; its length makes requests
    send the Content-Length that the presigned URL signed instead of a chunked body."""

    def __init__(self, file, size: int, on_progress: Callable[[int], None]):
        self._file = file
        self._size = size
        self._sent = 0
        self._on_progress = on_progress

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._sent += len(chunk)
        self._on_progress(self._sent)
        return chunk


def job_body(content_type: str, content_length: int, filename: str, output: dict, model: str | None = None) -> dict:
    """The body of POST /v1/jobs, and of each item of POST /v1/batches: the `output` options and
    the model as given (the API checks them; no model: the deployment's default)."""
    body = {"content_type": content_type, "content_length": content_length, "filename": filename, "output": output}
    if model is not None:
        body["model"] = model
    return body


def refuse_oversized(content_length: int, limits: dict) -> None:
    """An image over the API's max_upload_bytes is refused here as the API would (413
    payload_too_large), without asking for a job."""
    max_upload_bytes = limits["max_upload_bytes"]
    if content_length > max_upload_bytes:
        raise ApiError(
            413, "payload_too_large", f"the image is {content_length} bytes; the limit is {max_upload_bytes} bytes"
        )


class CutoutApi:
    """deadline (a time.monotonic() value) bounds every retry; on_retry hears why and how long before each one.
    known_limits: the body of GET /v1/limits when another client has asked already (one ask serves a whole run).
    api_key: sent as x-api-key on every API call (None: the deployment takes calls without one)."""

    def __init__(
        self,
        base_url: str,
        deadline: float | None = None,
        on_retry: RetryListener | None = None,
        known_limits: dict | None = None,
        api_key: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.on_retry = on_retry or (lambda reason, wait_s: None)
        self.session = requests.Session()
        self._limits = known_limits
        self._api_headers = {API_KEY_HEADER: api_key} if api_key else {}

    def _send(
        self,
        attempt: Callable[[], requests.Response],
        network_errors_are_transient: bool = False,
        conflicts_are_transient: bool = False,
    ) -> requests.Response:
        """attempt() again while its answer is transient (429, 5xx; a dropped connection, and an
        idempotency conflict, if so told) and attempts and time are left; then the last answer,
        or error, stands."""
        deadline = self.deadline if self.deadline is not None else time.monotonic() + CALL_RETRY_BUDGET_S
        for attempts in itertools.count(1):
            try:
                response = attempt()
            except (requests.ConnectionError, requests.Timeout) as error:
                wait_s = retry_wait_s(attempts, deadline, None) if network_errors_are_transient else None
                if wait_s is None:
                    raise
                reason = f"network error: {error}"
            else:
                transient = is_transient(response.status_code) or (
                    conflicts_are_transient and is_idempotency_conflict(response)
                )
                if not transient:
                    return response
                wait_s = retry_wait_s(attempts, deadline, retry_after_s(response.headers.get("Retry-After")))
                if wait_s is None:
                    return response
                reason = str(ApiError.from_response(response))
                response.close()
            self.on_retry(reason, wait_s)
            time.sleep(wait_s)

    def _call(
        self,
        method: str,
        path: str,
        *,
        network_errors_are_transient: bool = False,
        idempotency_key: str | None = None,
        **kwargs,
    ) -> dict:
        """One API call with its retries. With an idempotency_key every retry carries the same key,
        so the API makes what it asks for once: a dropped connection (the call may have been made)
        and a conflict (the first send still running) are then as transient as a 503."""
        url = f"{self.base_url}{path}"
        headers = self._api_headers | ({IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {})
        idempotent = idempotency_key is not None
        response = self._send(
            lambda: self.session.request(method, url, headers=headers, timeout=REQUEST_TIMEOUT_S, **kwargs),
            network_errors_are_transient=network_errors_are_transient or idempotent,
            conflicts_are_transient=idempotent,
        )
        if not response.ok:
            raise ApiError.from_response(response)
        return response.json()

    def limits(self) -> dict:
        """GET /v1/limits, asked once per client: the upload types with their signatures,
        max_upload_bytes, the terminal statuses and the service's other limits."""
        if self._limits is None:
            self._limits = self._call("GET", "/v1/limits")
        return self._limits

    def models(self) -> list[dict]:
        """GET /v1/models: every model a job may name (name, description, networks), the
        deployment's default marked `default: true`."""
        return self._call("GET", "/v1/models")["models"]

    def create_job(self, body: dict) -> dict:
        """POST /v1/jobs with a job_body(): the new job. One Idempotency-Key for all the sends of
        this call, so a retried create never makes a second job."""
        refuse_oversized(body["content_length"], self.limits())
        return self._call("POST", "/v1/jobs", json=body, idempotency_key=str(uuid.uuid4()))

    def create_batch(self, bodies: list[dict]) -> dict:
        """POST /v1/batches with up to the limits' max_batch_jobs job_body()s: the batch_id and each
        new job, in the order given. All or nothing (a bad item is a 400 naming `jobs.<i>.<field>`),
        and, as create_job, made once however often this call sends it."""
        for body in bodies:
            refuse_oversized(body["content_length"], self.limits())
        return self._call("POST", "/v1/batches", json={"jobs": bodies}, idempotency_key=str(uuid.uuid4()))

    def get_batch(self, batch_id: str) -> dict:
        return self._call("GET", f"/v1/batches/{batch_id}")

    def get_job(self, job_id: str, *, network_errors_are_transient: bool = False) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}", network_errors_are_transient=network_errors_are_transient)

    def cancel_job(self, job_id: str) -> dict:
        return self._call("DELETE", f"/v1/jobs/{job_id}")

    def upload(self, upload: dict, image: Path, on_progress: Callable[[int], None]) -> None:
        """PUT the image to the presigned URL with exactly the headers the API returned (both
        Content-Type and Content-Length are signed: S3 refuses anything else with 403). A retry
        (S3's 503 SlowDown, a 500) sends the file again from its first byte."""
        size = int(upload["headers"]["Content-Length"])
        with image.open("rb") as file:

            def put_from_the_start() -> requests.Response:
                file.seek(0)
                return self.session.request(
                    upload["method"],
                    upload["url"],
                    data=ProgressReader(file, size, on_progress),
                    headers=upload["headers"],
                    timeout=REQUEST_TIMEOUT_S,
                )

            response = self._send(put_from_the_start)
        if not response.ok:
            raise ApiError.from_response(response)

    def wait_for_job(self, job_id: str, deadline: float, on_job: Callable[[dict], None]) -> dict:
        """Poll with backoff until the job is terminal; JobTimedOut once time.monotonic() passes deadline.
        The job exists, so a dropped connection on the way is as transient as a 503."""
        terminal_statuses = self.limits()["terminal_statuses"]
        delay = FIRST_POLL_DELAY_S
        while True:
            job = self.get_job(job_id, network_errors_are_transient=True)
            on_job(job)
            if job["status"] in terminal_statuses:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimedOut(job)
            time.sleep(min(delay, remaining))
            delay = min(delay * POLL_BACKOFF, MAX_POLL_DELAY_S)

    def download(self, url: str, destination: Path) -> None:
        """Stream to a .part file renamed at the end, so a broken download leaves no file under the final name."""
        partial = destination.with_name(destination.name + ".part")
        response = self._send(lambda: self.session.get(url, stream=True, timeout=REQUEST_TIMEOUT_S))
        with response:
            if not response.ok:
                raise ApiError.from_response(response)
            with partial.open("wb") as file:
                for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                    file.write(chunk)
        partial.replace(destination)
