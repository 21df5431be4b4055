"""The demo page's API key (window.CUTOUT_API_KEY from config.js) in headless Chromium against a
fake API that requires one: every API call carries it as x-api-key and no storage call does; a
refused or missing key says what to do; a create is sent with an Idempotency-Key, the same on its
retry."""

import json
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.support import fake_cutout_api as fake

PHOTO = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"
KEY = "local-test-key-0123456789abcdef"
SCREENSHOT = Path("/tmp/web_forbidden.png")


@pytest.fixture
def keyed_api():
    with fake.serving(fake.FakeCutoutApi(api_key=KEY)) as api:
        yield api


def configure(web_root: Path, api_url: str, api_key: str | None) -> None:
    """config.js as `make up` writes it."""
    lines = [f"window.CUTOUT_API_URL = {json.dumps(api_url)};"]
    if api_key is not None:
        lines.append(f"window.CUTOUT_API_KEY = {json.dumps(api_key)};")
    (web_root / "config.js").write_text("\n".join(lines) + "\n")


def test_every_api_call_carries_the_configured_key_and_no_storage_call_does(page, web_url, web_root, keyed_api):
    configure(web_root, keyed_api.url, KEY)
    page.goto(web_url)
    page.set_input_files("#files", PHOTO)
    expect(page.locator(".job")).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    expect(page.locator("#config-problem")).to_be_hidden()
    for route in (fake.LIMITS, fake.MODELS, fake.CREATE, fake.POLL):
        assert set(keyed_api.headers(route, "x-api-key")) == {KEY}, route
    assert keyed_api.headers(fake.UPLOAD, "x-api-key") == [None]
    [idempotency_key] = keyed_api.headers(fake.CREATE, "Idempotency-Key")
    assert idempotency_key


@pytest.mark.parametrize(
    ("api_key", "words"),
    [
        (
            "revoked-key-0123456789",
            "The API refused this page's API key (403 forbidden): it may be revoked or mistyped.",
        ),
        (None, "The API needs an API key and this page has none (403 forbidden)."),
    ],
    ids=["refused", "missing"],
)
def test_a_refused_key_says_so_on_the_page_and_on_the_card(
    page, web_url, web_root, keyed_api, artifacts, api_key, words
):
    configure(web_root, keyed_api.url, api_key)
    page.goto(web_url)
    problem = page.locator("#config-problem")
    expect(problem).to_contain_text(words)
    expect(problem).to_contain_text("window.CUTOUT_API_KEY in config.js")
    expect(page.locator("#model-hint")).to_have_text("Models cannot be listed without a valid API key.")
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_contain_text(words)
    expect(card.locator(".problem")).to_have_attribute("title", "forbidden")
    if api_key is not None:
        page.screenshot(path=SCREENSHOT, full_page=True)
        shutil.copy(SCREENSHOT, artifacts / "web-forbidden.png")
    assert keyed_api.jobs == {}
    assert keyed_api.times(fake.CREATE) == []


def test_a_deployment_named_by_the_query_is_not_sent_config_js_key(page, web_url, web_root, keyed_api, fake_api):
    configure(web_root, keyed_api.url, KEY)
    page.goto(f"{web_url}?api={quote(fake_api.url, safe='')}")
    page.set_input_files("#files", PHOTO)
    expect(page.locator(".job")).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    assert set(fake_api.headers(fake.CREATE, "x-api-key")) == {None}
    assert keyed_api.arrivals == []


def test_a_create_whose_answer_is_lost_is_sent_again_with_its_key_and_makes_one_job(page, web_url, web_root, keyed_api):
    keyed_api.plan(fake.CREATE, [fake.AfterWork(fake.RESET)])
    configure(web_root, keyed_api.url, KEY)
    page.goto(web_url)
    page.set_input_files("#files", PHOTO)
    expect(page.locator(".job")).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    first, retry = keyed_api.headers(fake.CREATE, "Idempotency-Key")
    assert first and first == retry
    assert len(keyed_api.jobs) == 1
