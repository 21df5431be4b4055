"""Error codes a client can act on, each with the message a person reads."""

from enum import StrEnum


class ErrorCode(StrEnum):
    # Refusals of a request to the API.
    BAD_REQUEST = "bad_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_FOUND = "not_found"
    NOT_CANCELLABLE = "not_cancellable"
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


class JobRejected(Exception):
    """A request or an upload that Cutout refuses, with the code and words to explain it."""

    def __init__(self, code: ErrorCode, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def as_dict(self) -> dict:
        body = {"code": self.code.value, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body
