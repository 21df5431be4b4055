"""Helpers for the LocalStack tests: unique names, zip files, functions, polling."""

import io
import json
import time
import uuid
import zipfile

from infra import PYTHON_VERSION

# The functions' runtime, which the executor insists the project's venv runs.
RUNTIME = f"python{PYTHON_VERSION}"
LAMBDA_ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def create_function(
    aws, code: dict[str, str], *, timeout: int = 10, layers: list[str] = (), env: dict = None, runtime: str = RUNTIME
):
    """A zip function with handler `handler.handler`, active when this returns."""
    lambda_client = aws("lambda")
    name = unique("fn")
    lambda_client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=LAMBDA_ROLE,
        Handler="handler.handler",
        Code={"ZipFile": zip_files(code)},
        Timeout=timeout,
        Layers=list(layers),
        Environment={"Variables": env or {}},
    )
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=name)
    return name


def invoke(aws, name: str, event) -> tuple[dict, object]:
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response, json.loads(response["Payload"].read() or b"null")


def wait_for(condition, timeout: float, interval: float = 0.3):
    """Polls until condition() returns something truthy; returns it, or fails after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
