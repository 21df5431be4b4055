"""S3 key names. They derive from the server-generated job id only: no user input reaches a key."""

import uuid

UPLOADS_PREFIX = "uploads/"
PREPARED_PREFIX = "prepared/"
RESULTS_PREFIX = "results/"


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    """True for the canonical text of a uuid4, the only form Cutout issues."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return parsed.version == 4 and str(parsed) == value


def upload_key(job_id: str) -> str:
    return f"{UPLOADS_PREFIX}{job_id}"


def prepared_key(job_id: str) -> str:
    return f"{PREPARED_PREFIX}{job_id}"


def result_key(job_id: str, extension: str) -> str:
    return f"{RESULTS_PREFIX}{job_id}.{extension}"


def job_id_from_upload_key(key: str) -> str | None:
    """The job an uploaded object belongs to, or None for any key Cutout did not hand out."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    candidate = key[len(UPLOADS_PREFIX) :]
    return candidate if is_job_id(candidate) else None
