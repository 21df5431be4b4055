"""The demo page's model picker in headless Chromium against the fake API: filled from GET /v1/models
with the deployment's default chosen, the choice sent with the job and named by the result, and
the page still working, on the default, when the models cannot be had."""

from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from cutout.errors import ErrorCode, JobRejected
from cutout.models import chosen_model
from cutout.settings import Settings
from tests.support import fake_cutout_api as fake

PHOTO = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"


def open_against(page, web_url: str, api_url: str) -> None:
    page.goto(f"{web_url}?api={quote(api_url, safe='')}")


def default_and_another(catalogue: dict) -> tuple[dict, dict]:
    (default,) = [model for model in catalogue["models"] if model["default"]]
    another = next(model for model in catalogue["models"] if not model["default"])
    return default, another


def test_the_picker_offers_the_apis_models_with_its_default_chosen_and_described(page, web_url, fake_api, artifacts):
    # Not the first model listed, so the page must read `default`, not take the first.
    fake_api.serve_models(Settings(default_model=fake_api.models["models"][1]["name"]))
    default, _ = default_and_another(fake_api.models)
    open_against(page, web_url, fake_api.url)
    picker = page.get_by_role("combobox", name="Model")
    expect(picker).to_be_enabled()
    expect(picker).to_have_value(default["name"])
    expect(picker).to_have_accessible_description(default["description"])
    expect(page.locator("#model-hint")).to_have_text(default["description"])
    options = picker.locator("option")
    assert options.evaluate_all("options => options.map((option) => option.value)") == [
        model["name"] for model in fake_api.models["models"]
    ]
    expect(picker.locator("option:checked")).to_have_text(f"{default['name']} (default)")
    page.screenshot(path=artifacts / "web-model-picker.png", full_page=True)


def test_a_model_chosen_with_the_keyboard_is_sent_and_named_by_the_result(page, web_url, fake_api, artifacts):
    models = fake_api.models["models"]
    default, _ = default_and_another(fake_api.models)
    following = models[(models.index(default) + 1) % len(models)]
    open_against(page, web_url, fake_api.url)
    picker = page.get_by_role("combobox", name="Model")
    expect(picker).to_have_value(default["name"])
    picker.focus()
    page.keyboard.press("ArrowDown")
    expect(picker).to_have_value(following["name"])
    expect(page.locator("#model-hint")).to_have_text(following["description"])
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    assert [job.body["model"] for job in fake_api.jobs.values()] == [following["name"]]
    expect(card.locator(".details")).to_contain_text(f"model {following['name']}; png, 451×300")
    after = card.locator("img.after")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=after.element_handle(), timeout=10_000)
    page.screenshot(path=artifacts / "web-model-result.png", full_page=True)


def test_the_default_is_sent_by_name_when_left_chosen(page, web_url, fake_api):
    default, _ = default_and_another(fake_api.models)
    open_against(page, web_url, fake_api.url)
    expect(page.get_by_role("combobox", name="Model")).to_have_value(default["name"])
    page.set_input_files("#files", PHOTO)
    expect(page.locator(".job .details")).to_contain_text(f"model {default['name']};", timeout=30_000)
    assert [job.body["model"] for job in fake_api.jobs.values()] == [default["name"]]


@pytest.mark.parametrize(
    "refusal",
    [fake.api_error(404, ErrorCode.NOT_FOUND, "no such route"), fake.RESET],
    ids=["a-deployment-without-models", "a-dropped-connection"],
)
def test_without_models_the_page_says_so_and_jobs_get_the_default(page, web_url, fake_api, refusal, artifacts):
    fake_api.plan(fake.MODELS, [refusal])
    open_against(page, web_url, fake_api.url)
    expect(page.locator("#model-hint")).to_have_text(
        "Models are unavailable: each job gets the deployment's default model."
    )
    expect(page.get_by_role("combobox", name="Model")).to_be_disabled()
    page.screenshot(path=artifacts / "web-models-unavailable.png", full_page=True)
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "succeeded", timeout=30_000)
    (job,) = fake_api.jobs.values()
    assert "model" not in job.body
    expect(card.locator(".details")).to_contain_text(f"model {fake_api.default_model};")


def test_a_model_the_api_refuses_fails_the_card_with_its_message(page, web_url, fake_api):
    open_against(page, web_url, fake_api.url)
    picker = page.get_by_role("combobox", name="Model")
    expect(picker).to_be_enabled()
    # A page left open while the deployment dropped a model.
    picker.evaluate("select => select.add(new Option('retired', 'retired', false, true))")
    page.set_input_files("#files", PHOTO)
    card = page.locator(".job")
    expect(card).to_have_attribute("data-stage", "failed")
    with pytest.raises(JobRejected) as refused:
        chosen_model("retired", fake_api.default_model)
    (problem,) = refused.value.details["problems"]
    expect(card.locator(".problem")).to_have_text(f"{refused.value.message}: model {problem['problem']}")
    expect(card.locator(".problem")).to_have_attribute("title", ErrorCode.BAD_REQUEST)
    assert fake_api.jobs == {}
