"""The Cutout HTTP API exactly as the README documents it: models, create, upload, poll, download, cancel."""

import itertools
import random
import time
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

RetryListener = Callable[[str, float], None]


def is_transient(status: int) -> bool:
    return status == 429 or status >= 500


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
            error = response.json()["error"]
            problems = (error.get("details") or {}).get("problems")
            message = f"{error['message']}: {problems_text(problems)}" if problems else error["message"]
            return cls(response.status_code, error["code"], message)
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
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


class CutoutApi:
    """deadline (a time.monotonic() value) bounds every retry; on_retry hears why and how long before each one.
    known_limits: the body of GET /v1/limits when another client has asked already (one ask serves a whole run)."""

    def __init__(
        self,
        base_url: str,
        deadline: float | None = None,
        on_retry: RetryListener | None = None,
        known_limits: dict | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.on_retry = on_retry or (lambda reason, wait_s: None)
        self.session = requests.Session()
        self._limits = known_limits

    def _send(
        self, attempt: Callable[[], requests.Response], network_errors_are_transient: bool = False
    ) -> requests.Response:
        """attempt() again while its answer is transient (429, 5xx; a dropped connection if so
        told) and attempts and time are left; then the last answer, or error, stands."""
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
                if not is_transient(response.status_code):
                    return response
                wait_s = retry_wait_s(attempts, deadline, retry_after_s(response.headers.get("Retry-After")))
                if wait_s is None:
                    return response
                reason = str(ApiError.from_response(response))
                response.close()
            self.on_retry(reason, wait_s)
            time.sleep(wait_s)

    def _call(self, method: str, path: str, *, network_errors_are_transient: bool = False, **kwargs) -> dict:
        url = f"{self.base_url}{path}"
        response = self._send(
            lambda: self.session.request(method, url, timeout=REQUEST_TIMEOUT_S, **kwargs), network_errors_are_transient
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

    def create_job(
        self, content_type: str, content_length: int, filename: str, output: dict, model: str | None = None
    ) -> dict:
        """The new job, with the `output` options and the model as given (the API checks them; no
        model: the deployment's default); an image over the API's max_upload_bytes is refused here
        as the API would (413 payload_too_large), without asking for a job."""
        max_upload_bytes = self.limits()["max_upload_bytes"]
        if content_length > max_upload_bytes:
            raise ApiError(
                413, "payload_too_large", f"the image is {content_length} bytes; the limit is {max_upload_bytes} bytes"
            )
        body = {
            "content_type": content_type,
            "content_length": content_length,
            "filename": filename,
            "output": output,
        }
        if model is not None:
            body["model"] = model
        return self._call("POST", "/v1/jobs", json=body)

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
