"""The demo page in headless Chromium against the local stack (`make up`): a real photo becomes a cutout,
made by the deployment's default model, which the picker (filled from its GET /v1/models) offers."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

DATA = Path(__file__).resolve().parents[1] / "data"
JOB_TIMEOUT_MS = 180_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STAGE_ORDER = [
    "checking",
    "creating",
    "uploading",
    "awaiting_upload",
    "normalizing",
    "queued",
    "processing",
    "succeeded",
]
# Every stage a card shows, recorded as it happens, since a fast stage can be gone before a poll of the DOM.
RECORD_STAGES = """() => {
  window.seenStages = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      const stage = change.target.dataset.stage;
      if (stage && window.seenStages.at(-1) !== stage) window.seenStages.push(stage);
    }
  }).observe(document.getElementById("jobs"), { subtree: true, attributes: true, attributeFilter: ["data-stage"] });
}"""


@pytest.fixture
def live_page(page, web_url, web_root, stack):
    """The page configured for the local stack as `make up` configures it: its API and its key in config.js."""
    config = (
        f"window.CUTOUT_API_URL = {json.dumps(stack.api_url)};\nwindow.CUTOUT_API_KEY = {json.dumps(stack.api_key)};\n"
    )
    (web_root / "config.js").write_text(config)
    page.goto(web_url)
    page.evaluate(RECORD_STAGES)
    return page


def test_a_photo_becomes_a_cutout_over_a_checkerboard_with_a_download_link(live_page, artifacts):
    page = live_page
    picker = page.get_by_role("combobox", name="Model")
    # Read across origins from the deployed API, its default chosen.
    expect(picker).to_be_enabled()
    expect(picker.locator("option:checked")).to_contain_text("(default)")
    default_model = picker.input_value()
    page.set_input_files("#files", DATA / "chelsea.png")
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(card.locator(".details")).to_contain_text(f"model {default_model}; png, 451×300")
    after = card.locator("img.after")
    expect(after).to_have_class("after checkerboard")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=after.element_handle(), timeout=30_000)
    assert after.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [451, 300]
    assert card.locator(".download-link").get_attribute("href") == after.get_attribute("src")
    seen = page.evaluate("window.seenStages")
    assert "uploading" in seen and seen[-1] == "succeeded", seen
    assert seen == sorted(seen, key=STAGE_ORDER.index), seen
    page.screenshot(path=artifacts / "web-cutout.png", full_page=True)


def test_a_failed_job_shows_its_error_message(live_page, artifacts, tmp_path):
    page = live_page
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(PNG_SIGNATURE + b"not an image behind the signature" * 64)
    page.set_input_files("#files", damaged)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed", timeout=JOB_TIMEOUT_MS)
    problem = card.locator(".problem")
    expect(problem).to_have_text("the PNG image is damaged or incomplete and cannot be read")
    expect(problem).to_have_attribute("title", "corrupt_image")
    page.screenshot(path=artifacts / "web-failed-job.png", full_page=True)
