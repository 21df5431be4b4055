"""The demo page in headless Chromium, with no Cutout stack (a fake API at most): configuration and the
checks made, with the API's limits, before any job is asked for."""

import socket
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import expect

from tests.support.fake_cutout_api import LIMITS, MODELS

DATA = Path(__file__).resolve().parents[1] / "data"
MIB = 1024 * 1024


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/prod"


def with_api(web_url: str, api_url: str) -> str:
    return f"{web_url}?api={quote(api_url, safe='')}"


def test_without_an_api_url_the_page_says_how_to_set_one(page, web_url):
    page.goto(web_url)
    expect(page.locator("#config-problem")).to_contain_text("?api=")
    expect(page.locator("#files")).to_be_disabled()


def test_files_that_break_the_apis_limits_are_refused_in_words_before_any_job(page, web_url, fake_api, tmp_path):
    text = tmp_path / "holiday.png"
    text.write_text("a text file wearing an image's name")
    huge = tmp_path / "huge.png"
    huge.write_bytes((DATA / "chelsea.png").read_bytes().ljust(26 * MIB, b"\0"))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    page.goto(with_api(web_url, fake_api.url))
    expect(page.locator("header")).to_contain_text("JPEG, PNG or WebP, up to 25.0 MB each.")
    expect(page.locator("#files")).to_have_attribute("accept", "image/jpeg,image/png,image/webp")
    page.set_input_files("#files", [text, huge, empty])
    cards = page.locator(".job")
    expect(cards).to_have_count(3)
    for card in cards.all():
        expect(card).to_have_attribute("data-stage", "failed")
        expect(card.locator(".compare")).to_be_hidden()
        expect(card.locator(".download")).to_be_hidden()
    expect(cards.nth(0).locator(".problem")).to_have_text("holiday.png is not a JPEG, PNG or WebP image")
    expect(cards.nth(1).locator(".problem")).to_have_text("huge.png is 26.0 MB; the limit is 25.0 MB")
    expect(cards.nth(2).locator(".problem")).to_have_text("empty.jpg is empty")
    # The limits asked once for the page and its three cards, the models once for the picker, and nothing else.
    assert sorted(arrival.route for arrival in fake_api.arrivals) == sorted([LIMITS, MODELS])


def test_the_api_comes_from_config_js_unless_the_query_names_another(page, web_url, web_root):
    configured, overriding = closed_port_url(), closed_port_url()
    (web_root / "config.js").write_text(f'window.CUTOUT_API_URL = "{configured}";\n')
    for url, expected_api in ((web_url, configured), (with_api(web_url, overriding), overriding)):
        page.goto(url)
        page.set_input_files("#files", DATA / "chelsea.png")
        expect(page.locator(".job .problem")).to_have_text(f"cannot reach the API at {expected_api}")
