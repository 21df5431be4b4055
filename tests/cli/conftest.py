"""The local stack that `make up` describes in .local/stack.json, for the tests that need a live API."""

from pathlib import Path

import pytest
import requests

from cutout_cli.api import ApiError, CutoutApi
from cutout_cli.config import NoApiUrl, local_stack_api_url

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def live_api_url() -> str:
    try:
        api_url = local_stack_api_url(REPO)
        CutoutApi(api_url).health()
    except (NoApiUrl, ApiError, requests.RequestException) as error:
        pytest.skip(f"no local stack is up: {error}")
    return api_url
