"""One LocalStack for the session, started with the project's runner and stopped at the end."""

import boto3
import pytest
from botocore.config import Config

from localdev import localstack_host as runner

REGION = "us-east-1"


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
