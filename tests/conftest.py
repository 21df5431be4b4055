"""Test set-up shared by every suite: import paths laid out as Lambda lays them, fake AWS credentials."""

import os
import sys
from pathlib import Path

import pytest

import deployed_stack

ROOT = Path(__file__).resolve().parent.parent
# Lambda puts the function's code first and the layer's python/ folder (mounted at /opt) after it.
for folder in ("functions/api", "functions/normalize", "functions/inference", "layers/shared/python"):
    sys.path.append(str(ROOT / folder))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "cutout-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "CutoutTests",
        "POWERTOOLS_DEV": "false",
        "TABLE_NAME": "cutout-jobs",
        "BUCKET_NAME": "cutout-images",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-inference",
    }
)
for leaked in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
    os.environ.pop(leaked, None)


@pytest.fixture(scope="session")
def stack():
    """The real stack on LocalStack, deployed once per session for every test that asks for it."""
    yield from deployed_stack.brought_up()


@pytest.fixture(scope="session")
def live_api_url(stack) -> str:
    return stack.api_url


def pytest_collection_modifyitems(items):
    """The LocalStack runner's own tests stop and restart LocalStack, which forgets every deployed
    stack: they run before any test that deploys onto it."""
    items.sort(key=lambda item: "tests/localstack/" not in item.nodeid)
