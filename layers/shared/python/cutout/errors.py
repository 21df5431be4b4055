"""Error codes a client can act on, each with the message a person reads."""

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    # Refusals of a request to the API.
    BAD_REQUEST = "bad_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    FORBIDDEN = "forbidden"  # no API key, or one API Gateway does not know
    NOT_FOUND = "not_found"
    NOT_CANCELLABLE = "not_cancellable"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    TOO_MANY_REQUESTS = "too_many_requests"
    INTERNAL_ERROR = "internal_error"
    # Reasons a job ends failed or expired.
    UPLOAD_NOT_RECEIVED = "upload_not_received"
    RESULT_EXPIRED = "result_expired"
    EMPTY_UPLOAD = "empty_upload"
    SIZE_MISMATCH = "size_mismatch"
    TOO_LARGE = "too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT_IMAGE = "corrupt_image"
    TOO_MANY_PIXELS = "too_many_pixels"
    SOURCE_MISSING = "source_missing"
    INFERENCE_FAILED = "inference_failed"
    RETRIES_EXHAUSTED = "retries_exhausted"
    STALLED = "stalled"


# Every error Cutout writes down, raised first (JobRejected) or not, is one of these. Its docstring
# is the API document's description of it.
@dataclass(frozen=True)
class ErrorDetail:
    """An error as a client reads it: why a request was refused, or why a job failed or expired."""

    code: str  # an ErrorCode
    message: str
    details: dict | None = None


class JobRejected(Exception):
    """A request, an upload or a job that Cutout refuses, with the code and words to explain it:
    retrying cannot help."""

    def __init__(self, code: ErrorCode, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def error(self) -> ErrorDetail:
        return ErrorDetail(self.code, self.message, self.details)
