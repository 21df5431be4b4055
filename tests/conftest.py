"""Test set-up shared by every suite: fake AWS credentials and the deployed local stack."""

import pytest

from tests.support import deployed_stack
from tests.support.fake_aws import use_fake_aws

use_fake_aws()


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
