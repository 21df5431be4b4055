"""Which Cutout API to talk to: --api, else $CUTOUT_API_URL, else the local stack's .local/stack.json."""

import json
from collections.abc import Mapping
from pathlib import Path

API_URL_VARIABLE = "CUTOUT_API_URL"
STACK_FILE = Path(".local") / "stack.json"


class NoApiUrl(Exception):
    pass


def find_stack_file(start: Path) -> Path | None:
    """The nearest .local/stack.json (written by `make up`) in start or a folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / STACK_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_api_url(flag: str | None, environ: Mapping[str, str], cwd: Path) -> str:
    for configured in (flag, environ.get(API_URL_VARIABLE)):
        if configured:
            return configured.rstrip("/")
    return local_stack_api_url(cwd)


def local_stack_api_url(start: Path) -> str:
    """The api_url of the nearest local stack, or NoApiUrl saying why there is none."""
    stack_file = find_stack_file(start)
    if stack_file is None:
        raise NoApiUrl(f"no API URL: pass --api URL, set {API_URL_VARIABLE}, or run `make up` to write {STACK_FILE}")
    try:
        api_url = json.loads(stack_file.read_text()).get("api_url")
    except (OSError, ValueError, AttributeError) as error:
        raise NoApiUrl(f"{stack_file} is not a stack description ({error}); pass --api URL") from error
    if not api_url:
        raise NoApiUrl(f"{stack_file} has no api_url; pass --api URL")
    return api_url.rstrip("/")
