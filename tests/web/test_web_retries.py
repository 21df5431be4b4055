"""The demo page in headless Chromium against a fake API on 127.0.0.1 (tests/fake_cutout_api.py)
that throttles, fails and drops connections before it answers: the card says it is trying again and
ends with the cutout; a refusal fails the card at once with the API's message."""

import itertools
from pathlib import Path
from urllib.parse import quote

import pytest
from cutout.errors import ErrorCode
from fake_cutout_api import CREATE, POLL, RESET, UPLOAD, api_error, http_date_in, s3_error, throttled, unavailable
from playwright.sync_api import expect

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTO = DATA / "chelsea.png"
SLOW_DOWN = s3_error(503, "SlowDown", "Please reduce your request rate.")


def open_against(page, web_url: str, api_url: str) -> None:
    page.goto(f"{web_url}?api={quote(api_url, safe='')}")


def test_the_page_waits_out_throttling_outages_and_a_reset_connection_to_the_cutout(page, web_url, fake_api, artifacts):
    fake_api.plan(CREATE, [throttled("2")])
    fake_api.plan(UPLOAD, [SLOW_DOWN])
    fake_api.plan(POLL, [unavailable(), RESET, throttled(http_date_in(3))])
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    notice = card.locator(".retry")
    expect(notice).to_have_text("Too Many Requests: trying again in 2 s")
    expect(card).to_have_attribute("data-stage", "creating")
    page.screenshot(path=artifacts / "web-retrying.png", full_page=True)
    expect(card).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    expect(notice).to_be_hidden()
    after = card.locator("img.after")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=after.element_handle(), timeout=10_000)
    assert after.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [451, 300]
    page.screenshot(path=artifacts / "web-retried-cutout.png", full_page=True)
    assert len(fake_api.times(CREATE)) == 2
    assert fake_api.gaps(CREATE)[0] >= 2.0  # Retry-After: 2, read across origins
    assert len(fake_api.times(UPLOAD)) == 2
    # 503, reset, 429, then processing and succeeded.
    assert len(fake_api.times(POLL)) == 5
    # Retry-After as an HTTP date 3 s ahead, in whole seconds: more than 2 s from the 429.
    assert fake_api.gaps(POLL)[2] >= 2.0


@pytest.mark.parametrize(
    ("route", "refusal", "code", "message"),
    [
        (CREATE, api_error(400, ErrorCode.BAD_REQUEST, "content_length: must be at most 26214400"), ErrorCode.BAD_REQUEST, "content_length: must be at most 26214400"),
        (UPLOAD, s3_error(403, "SignatureDoesNotMatch", "The signature does not match."), "SignatureDoesNotMatch", "The signature does not match."),
        (POLL, api_error(404, ErrorCode.NOT_FOUND, "no job 'x'"), ErrorCode.NOT_FOUND, "no job 'x'"),
    ],
)
def test_a_refusal_fails_the_card_at_once_with_its_message(page, web_url, fake_api, route, refusal, code, message):
    fake_api.plan(route, [refusal])
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_have_text(message)
    expect(card.locator(".problem")).to_have_attribute("title", code)
    assert len(fake_api.times(route)) == 1


def test_the_page_gives_up_after_max_attempts_with_the_last_answer(page, web_url, fake_api):
    fake_api.plan(CREATE, itertools.repeat(unavailable("0")))
    open_against(page, web_url, fake_api.url)
    max_attempts = page.evaluate(f"import('{web_url}cutout-api.js').then((api) => api.MAX_ATTEMPTS)")
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_have_text("Service Unavailable")
    expect(card.locator(".problem")).to_have_attribute("title", ErrorCode.INTERNAL_ERROR)
    assert len(fake_api.times(CREATE)) == max_attempts


def test_a_retry_after_beyond_the_deadline_fails_the_card_at_once(page, web_url, fake_api):
    fake_api.plan(CREATE, [throttled("3600")])
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_have_text("Too Many Requests")
    expect(card.locator(".retry")).to_be_hidden()
    assert len(fake_api.times(CREATE)) == 1
