import pytest

from tests.support.fake_cutout_api import FakeCutoutApi, serving


@pytest.fixture
def fake_api():
    with serving(FakeCutoutApi()) as api:
        yield api
