"""S3 key names and queue messages. They derive from the server-generated job id only: no user input reaches a key."""

import json
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


def job_message(job_id: str) -> str:
    """The body of a queue message about one job (inference's and the webhook deliveries')."""
    return json.dumps({"job_id": job_id})


def job_id_in_message(body: str) -> str:
    """The job a queue message names, or ValueError when it names no valid one."""
    try:
        job_id = json.loads(body)["job_id"]
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError("not a job message") from error
    if not isinstance(job_id, str) or not is_job_id(job_id):
        raise ValueError("the message names no valid job id")
    return job_id
