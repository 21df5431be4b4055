"""Who calls the API, and what a caller may see: with API keys, a job belongs to the key that
created it and any other key is told it does not exist; without, a job's id is the capability.

Listing pages through the caller's jobs, newest first, on the jobs table's owner index; its
cursor is opaque to clients and never carries the owner, which the server adds from the caller.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from enum import StrEnum

from cutout.errors import ErrorCode, JobRejected


class ApiAuth(StrEnum):
    API_KEY = "api_key"
    NONE = "none"


# The jobs table's global secondary index of each key's jobs by creation time. A job created
# without a key has no owner attribute, so it is not in the index at all.
OWNER_INDEX = "by-owner"
OWNER_ATTRIBUTE = "owner"
OWNER_INDEX_SORT_KEY = "created_at"
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
# The longest cursor the API issues is under 200 characters; anything longer is not one.
MAX_CURSOR_CHARS = 512


def caller_of(api_auth: str, api_key_id: str | None) -> str | None:
    """The owner a request acts as: its API key's id, or None when the deployment has no keys.
    API Gateway refuses a request without a valid key before it gets here; a request that still
    arrives without one (a misconfigured stage) is refused rather than served as nobody's."""
    if api_auth == ApiAuth.NONE:
        return None
    if not api_key_id:
        raise JobRejected(ErrorCode.FORBIDDEN, "an API key is required: send it in the x-api-key header")
    return api_key_id


def may_access(owner: str | None, caller: str | None) -> bool:
    """Whether a caller may read or change something owned by owner. Without keys (caller None)
    the id was the capability; with keys only the same key may, and something created while the
    deployment had no keys belongs to nobody."""
    return caller is None or owner == caller


@dataclass(frozen=True)
class ListQuery:
    status: str | None  # a JobStatus value, or None for every status
    limit: int
    start_after: dict | None  # the index position to go on after, without the owner


def encode_cursor(position: dict) -> str:
    """A client-opaque cursor from the index position the last page ended at (its keys but the owner)."""
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, position_keys: frozenset[str]) -> dict:
    """The position a cursor issued by encode_cursor holds, or JobRejected (400) for anything else."""
    bad = JobRejected(
        ErrorCode.BAD_REQUEST, "cursor is not one this API issued: pass next_cursor as it came", {"field": "cursor"}
    )
    if len(cursor) > MAX_CURSOR_CHARS:
        raise bad
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(position, dict) or set(position) != position_keys:
        raise bad
    if not all(isinstance(value, str) for value in position.values()):
        raise bad
    return position
