import pytest

from tests.support.fake_cutout_api import FakeCutoutApi, serving


@pytest.fixture
def fake_api():
    with serving(FakeCutoutApi()) as api:
        yield api


@pytest.fixture(scope="session")
def live_api_key(stack) -> str:
    """The key `make up` created for the local stack."""
    return stack.api_key
