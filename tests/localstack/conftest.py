"""One LocalStack for the session, started with the project's runner and stopped at the end."""

import importlib.util
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


def _load_runner():
    spec = importlib.util.spec_from_file_location("cutout_localstack_runner", REPO / "localstack" / "runner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


@pytest.fixture(scope="session")
def localstack():
    """LocalStack's URL. A LocalStack that was already running is used and left running."""
    already_running = runner.status() != "stopped"
    url = runner.start()
    yield url
    if not already_running:
        runner.stop()


@pytest.fixture(scope="session")
def aws(localstack):
    """Clients for LocalStack, with explicit test credentials (not the unit tests' environment)."""
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)

    def client(service: str):
        # SigV4 signs Content-Length into presigned URLs; SigV2 (what boto3 may pick) cannot.
        config = Config(signature_version="s3v4") if service == "s3" else None
        return session.client(service, endpoint_url=localstack, config=config)

    return client


@pytest.fixture(scope="session")
def localstack_runner():
    return runner
