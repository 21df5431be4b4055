"""The demo page in headless Chromium against a fake API on 127.0.0.1 (tests/support/fake_cutout_api.py):
the limits it serves decide what is sent and when polling ends; it throttles, fails and drops
connections before it answers: the card says it is trying again and ends with the cutout; a refusal
fails the card at once with the API's message."""

import itertools
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from cutout.errors import ErrorCode
from cutout.settings import Settings
from tests.support import fake_cutout_api as fake

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTO = DATA / "chelsea.png"
MIB = 1024 * 1024
SLOW_DOWN = fake.s3_error(503, "SlowDown", "Please reduce your request rate.")


def open_against(page, web_url: str, api_url: str) -> None:
    page.goto(f"{web_url}?api={quote(api_url, safe='')}")


def test_the_page_waits_out_throttling_outages_and_a_reset_connection_to_the_cutout(page, web_url, fake_api, artifacts):
    fake_api.plan(fake.CREATE, [fake.throttled("2")])
    fake_api.plan(fake.UPLOAD, [SLOW_DOWN])
    fake_api.plan(fake.POLL, [fake.unavailable(), fake.RESET, fake.throttled(fake.http_date_in(3))])
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
    assert len(fake_api.times(fake.CREATE)) == 2
    assert fake_api.gaps(fake.CREATE)[0] >= 2.0  # Retry-After: 2, read across origins
    assert len(fake_api.times(fake.UPLOAD)) == 2
    # 503, reset, 429, then processing and succeeded.
    assert len(fake_api.times(fake.POLL)) == 5
    # Retry-After as an HTTP date 3 s ahead, in whole seconds: more than 2 s from the 429.
    assert fake_api.gaps(fake.POLL)[2] >= 2.0


@pytest.mark.parametrize(
    ("route", "refusal", "code", "message"),
    [
        # The API has the last word: a limit lowered since the page asked for the limits.
        (
            fake.CREATE,
            fake.api_error(413, ErrorCode.PAYLOAD_TOO_LARGE, "the limit is 1000 bytes"),
            ErrorCode.PAYLOAD_TOO_LARGE,
            "the limit is 1000 bytes",
        ),
        (
            fake.UPLOAD,
            fake.s3_error(403, "SignatureDoesNotMatch", "The signature does not match."),
            "SignatureDoesNotMatch",
            "The signature does not match.",
        ),
        (fake.POLL, fake.api_error(404, ErrorCode.NOT_FOUND, "no job 'x'"), ErrorCode.NOT_FOUND, "no job 'x'"),
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
    fake_api.plan(fake.CREATE, itertools.repeat(fake.unavailable("0")))
    open_against(page, web_url, fake_api.url)
    max_attempts = page.evaluate(f"import('{web_url}cutout-api.js').then((api) => api.MAX_ATTEMPTS)")
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_have_text("Service Unavailable")
    expect(card.locator(".problem")).to_have_attribute("title", ErrorCode.INTERNAL_ERROR)
    assert len(fake_api.times(fake.CREATE)) == max_attempts


def test_a_retry_after_beyond_the_deadline_fails_the_card_at_once(page, web_url, fake_api):
    fake_api.plan(fake.CREATE, [fake.throttled("3600")])
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_have_text("Too Many Requests")
    expect(card.locator(".retry")).to_be_hidden()
    assert len(fake_api.times(fake.CREATE)) == 1


def test_a_file_over_the_served_upload_limit_is_refused_before_any_job(page, web_url, fake_api, tmp_path):
    fake_api.serve_limits(Settings(max_upload_bytes=MIB))
    over = tmp_path / "over.png"
    over.write_bytes(PHOTO.read_bytes().ljust(2 * MIB, b"\0"))
    open_against(page, web_url, fake_api.url)
    expect(page.locator("header")).to_contain_text("up to 1.0 MB each.")
    page.set_input_files("#files", over)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_have_text("over.png is 2.0 MB; the limit is 1.0 MB")
    expect(card.locator(".problem")).to_have_attribute("title", ErrorCode.PAYLOAD_TOO_LARGE)
    assert fake_api.times(fake.CREATE) == []


def test_the_type_declared_is_the_first_served_upload_type_whose_signatures_match(page, web_url, fake_api):
    # "PNG" at offset 1 is in every PNG, so this type, listed before image/png, wins.
    every_png = {"content_type": "image/webp", "signatures": [{"offset": 1, "hex": b"PNG".hex()}]}
    fake_api.limits["upload_types"].insert(0, every_png)
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", PHOTO)
    expect(page.locator(".job")).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    assert [job.content_type for job in fake_api.jobs.values()] == ["image/webp"]


def test_a_file_of_a_type_the_api_does_not_list_is_refused_before_any_job(page, web_url, fake_api):
    fake_api.limits["upload_types"] = [t for t in fake_api.limits["upload_types"] if t["content_type"] != "image/png"]
    open_against(page, web_url, fake_api.url)
    expect(page.locator("#files")).to_have_attribute("accept", "image/jpeg,image/webp")
    page.set_input_files("#files", PHOTO)
    expect(page.locator(".job .problem")).to_have_text("chelsea.png is not a JPEG, PNG or WebP image")
    assert fake_api.times(fake.CREATE) == []


def test_polling_stops_at_a_status_the_api_lists_as_terminal(page, web_url, fake_api):
    fake_api.limits["terminal_statuses"].append("processing")
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    expect(card.locator(".problem")).to_have_text("the job ended processing")
    assert len(fake_api.times(fake.POLL)) == 1


@pytest.mark.parametrize("cancellable", [True, False], ids=["cancellable", "not-cancellable"])
def test_the_cancel_button_shows_only_in_a_status_the_api_lists_as_cancellable(page, web_url, fake_api, cancellable):
    fake_api.hold_at = "queued"
    if not cancellable:
        fake_api.limits["cancellable_statuses"].remove("queued")
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "queued")
    if cancellable:
        expect(card.locator(".cancel")).to_be_visible()
    else:
        expect(card.locator(".cancel")).to_be_hidden()


def test_an_unavailable_limits_answer_is_waited_out_and_asked_once_for_all_cards(page, web_url, fake_api):
    fake_api.plan(fake.LIMITS, [fake.unavailable()])
    open_against(page, web_url, fake_api.url)
    page.set_input_files("#files", [PHOTO, DATA / "coffee.png"])
    cards = page.locator(".job")
    expect(cards).to_have_count(2)
    for card in cards.all():
        expect(card).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    assert len(fake_api.times(fake.LIMITS)) == 2


def choose_options(page, output_format: str, background: str, color: str | None = None, alpha: int | None = None):
    page.check(f"[name=format][value={output_format}]")
    if color is not None:
        page.fill("[name=bg_color]", color)
    if alpha is not None:
        page.fill("[name=bg_alpha]", str(alpha))
    if page.locator(f"[name=background][value={background}]").is_enabled():
        page.check(f"[name=background][value={background}]")


@pytest.mark.parametrize(
    ("output_format", "background", "color", "alpha", "sent", "checkerboard"),
    [
        ("png", "transparent", None, None, {"format": "png"}, True),
        ("png", "white", None, None, {"format": "png", "bg_color": "#FFFFFF"}, False),
        ("webp", "custom", "#102030", 128, {"format": "webp", "bg_color": "#10203080"}, True),
        ("webp", "custom", "#102030", None, {"format": "webp", "bg_color": "#102030"}, False),
        # JPEG has no transparency: transparent is not offered, white is chosen instead, and no alpha.
        ("jpeg", "transparent", None, None, {"format": "jpeg", "bg_color": "#FFFFFF"}, False),
        ("jpeg", "custom", "#102030", None, {"format": "jpeg", "bg_color": "#102030"}, False),
        # A mask takes no background.
        ("mask", "white", None, None, {"format": "mask"}, False),
    ],
)
def test_the_format_and_background_chosen_are_sent_and_shown(
    page, web_url, fake_api, output_format, background, color, alpha, sent, checkerboard
):
    open_against(page, web_url, fake_api.url)
    choose_options(page, output_format, background, color, alpha)
    if output_format == "jpeg":
        expect(page.locator("[name=background][value=transparent]")).to_be_disabled()
        expect(page.locator("[name=bg_alpha]")).to_be_disabled()
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    assert [job.output for job in fake_api.jobs.values()] == [sent]
    after = card.locator("img.after")
    if checkerboard:
        expect(after).to_have_class("after checkerboard")
    else:
        expect(after).to_have_class("after")


def test_crop_margin_and_size_cap_are_sent_and_the_subject_is_shown(page, web_url, fake_api, artifacts):
    open_against(page, web_url, fake_api.url)
    expect(page.locator("[name=crop_margin]")).to_be_disabled()
    page.check("[name=crop]")
    page.fill("[name=crop_margin]", "5")
    page.select_option("[name=crop_margin_unit]", "%")
    page.fill("[name=max_side]", "512")
    choose_options(page, "jpeg", "custom", "#3a7bd5")
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    sent = {"format": "jpeg", "bg_color": "#3A7BD5", "crop": True, "crop_margin": "5%", "max_side": 512}
    assert [job.output for job in fake_api.jobs.values()] == [sent]
    expect(card.locator(".details")).to_contain_text("jpeg, 451×300, 0.2 MB; subject 451×300 at 0, 0; link valid")
    after = card.locator("img.after")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=after.element_handle(), timeout=10_000)
    page.screenshot(path=artifacts / "web-output-options.png", full_page=True)


def test_output_options_the_api_refuses_fail_the_card_with_its_problems(page, web_url, fake_api):
    open_against(page, web_url, fake_api.url)
    page.check("[name=crop]")
    page.fill("[name=crop_margin]", "900")
    page.fill("[name=max_side]", "8")
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    problem = card.locator(".problem")
    expect(problem).to_have_text(
        "the output options are not valid: output.crop_margin must be at most 500px;"
        " output.max_side must be an integer from 16 to 65535"
    )
    expect(problem).to_have_attribute("title", ErrorCode.BAD_REQUEST)
    assert fake_api.jobs == {}


def test_the_formats_offered_are_those_the_api_lists(page, web_url, fake_api):
    fake_api.limits["output_formats"] = ["webp", "jpeg"]
    open_against(page, web_url, fake_api.url)
    formats = page.locator("[name=format]")
    expect(formats).to_have_count(2)
    assert [radio.get_attribute("value") for radio in formats.all()] == ["webp", "jpeg"]
    expect(formats.first).to_be_checked()
    expect(page.locator("#format-options")).to_have_text("Format WebP JPEG")
