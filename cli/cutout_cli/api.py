"""The Cutout HTTP API exactly as the README documents it: create, upload, poll, download, cancel."""

import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import requests

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "expired"})
# (connect, read) for one HTTP call, so that no single call can hang the command.
REQUEST_TIMEOUT_S = (10, 60)
FIRST_POLL_DELAY_S = 0.5
MAX_POLL_DELAY_S = 5.0
POLL_BACKOFF = 1.5
DOWNLOAD_CHUNK_BYTES = 1 << 16


class ApiError(Exception):
    """A refusal from the API ({"error": {"code", "message"}}) or from S3 (an XML <Error>)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_response(cls, response: requests.Response) -> "ApiError":
        try:
            error = response.json()["error"]
            return cls(response.status_code, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
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
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, f"{self.base_url}{path}", timeout=REQUEST_TIMEOUT_S, **kwargs)
        if not response.ok:
            raise ApiError.from_response(response)
        return response.json()

    def create_job(self, content_type: str, content_length: int, filename: str, output_format: str) -> dict:
        body = {
            "content_type": content_type,
            "content_length": content_length,
            "filename": filename,
            "output": {"format": output_format},
        }
        return self._call("POST", "/v1/jobs", json=body)

    def health(self) -> dict:
        return self._call("GET", "/v1/health")

    def get_job(self, job_id: str) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}")

    def cancel_job(self, job_id: str) -> dict:
        return self._call("DELETE", f"/v1/jobs/{job_id}")

    def upload(self, upload: dict, image: Path, on_progress: Callable[[int], None]) -> None:
        """PUT the image to the presigned URL with exactly the headers the API returned (both
        Content-Type and Content-Length are signed: S3 refuses anything else with 403)."""
        size = int(upload["headers"]["Content-Length"])
        with image.open("rb") as file:
            response = self.session.request(
                upload["method"],
                upload["url"],
                data=ProgressReader(file, size, on_progress),
                headers=upload["headers"],
                timeout=REQUEST_TIMEOUT_S,
            )
        if not response.ok:
            raise ApiError.from_response(response)

    def wait_for_job(self, job_id: str, deadline: float, on_job: Callable[[dict], None]) -> dict:
        """Poll with backoff until the job is terminal; JobTimedOut once time.monotonic() passes deadline."""
        delay = FIRST_POLL_DELAY_S
        while True:
            job = self.get_job(job_id)
            on_job(job)
            if job["status"] in TERMINAL_STATUSES:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimedOut(job)
            time.sleep(min(delay, remaining))
            delay = min(delay * POLL_BACKOFF, MAX_POLL_DELAY_S)

    def download(self, url: str, destination: Path) -> None:
        """Stream to a .part file renamed at the end, so a broken download leaves no file under the final name."""
        partial = destination.with_name(destination.name + ".part")
        with self.session.get(url, stream=True, timeout=REQUEST_TIMEOUT_S) as response:
            if not response.ok:
                raise ApiError.from_response(response)
            with partial.open("wb") as file:
                for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                    file.write(chunk)
        partial.replace(destination)
