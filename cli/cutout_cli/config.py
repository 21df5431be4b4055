"""Which Cutout API to talk to, and with which key: --api / --api-key, else $CUTOUT_API_URL /
$CUTOUT_API_KEY, else the local stack's .local/stack.json (its api_url and api_key)."""

import json
from collections.abc import Mapping
from pathlib import Path

API_URL_VARIABLE = "CUTOUT_API_URL"
API_KEY_VARIABLE = "CUTOUT_API_KEY"
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


def read_stack_file(stack_file: Path) -> dict:
    """The stack description, or NoApiUrl saying why the file is not one."""
    try:
        stack = json.loads(stack_file.read_text())
    except (OSError, ValueError) as error:
        raise NoApiUrl(f"{stack_file} is not a stack description ({error}); pass --api URL") from error
    if not isinstance(stack, dict):
        raise NoApiUrl(f"{stack_file} is not a stack description (not a JSON object); pass --api URL")
    return stack


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
    api_url = read_stack_file(stack_file).get("api_url")
    if not api_url:
        raise NoApiUrl(f"{stack_file} has no api_url; pass --api URL")
    return api_url.rstrip("/")


def resolve_api_key(flag: str | None, environ: Mapping[str, str], cwd: Path, api_url: str) -> str | None:
    """The key to send as x-api-key, or None: a deployment with api_auth none needs none, and one
    that needs it answers 403 forbidden, which the CLI explains. The local stack's api_key is only
    sent to that stack's api_url, never to another deployment named by --api."""
    for configured in (flag, environ.get(API_KEY_VARIABLE)):
        if configured:
            return configured
    stack_file = find_stack_file(cwd)
    if stack_file is None:
        return None
    stack = read_stack_file(stack_file)
    if (stack.get("api_url") or "").rstrip("/") != api_url.rstrip("/"):
        return None
    return stack.get("api_key") or None
