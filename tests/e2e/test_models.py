"""Models end to end: the catalogue the deployed API serves, and a real photo cut out by each
model, every network baked into the deployed inference function."""

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from cutout.models import DEFAULT_MODEL, MODELS
from tests.support.hostile_images import encoded, photo


@pytest.fixture(scope="module")
def cutouts(stack) -> dict[str, tuple[dict, np.ndarray]]:
    """The astronaut (a person: every model's subject) as a mask from each model, all at once."""
    image = encoded(photo("astronaut"), "JPEG", quality=92)

    def run(model: str):
        job = stack.submit(image, "image/jpeg", output="mask", model=model)
        done = stack.wait(job["job_id"], timeout_s=300)
        assert done["status"] == "succeeded", done
        download = requests.get(done["result"]["url"], timeout=30)
        return model, (done, np.asarray(Image.open(io.BytesIO(download.content))))

    with ThreadPoolExecutor(len(MODELS)) as pool:
        return dict(pool.map(run, MODELS))


def test_the_api_lists_every_model_with_the_default_marked(stack):
    response = requests.get(f"{stack.api_url}/v1/models", headers=stack.headers, timeout=30)

    assert response.status_code == 200
    listed = response.json()["models"]
    assert [model["name"] for model in listed] == list(MODELS)
    assert [model["name"] for model in listed if model["default"]] == [DEFAULT_MODEL]


@pytest.mark.parametrize("model", list(MODELS))
def test_each_model_cuts_out_the_astronaut_and_says_it_did(cutouts, model):
    done, mask = cutouts[model]

    assert done["model"] == done["result"]["model"] == model
    assert mask.shape == (512, 512)
    # The astronaut fills the middle and the lower edge; the top corners are the background.
    assert mask[:40, :40].mean() < 30 and mask[:40, -40:].mean() < 30, "a top corner is background"
    assert mask[200:300, 200:300].mean() > 200, "the face is subject"


def test_the_models_disagree_somewhere(cutouts):
    """Each job really ran its own model: no two masks are the same."""
    masks = [mask.tobytes() for _, mask in cutouts.values()]
    assert len(set(masks)) == len(masks)


def test_a_job_without_a_model_runs_the_default(stack):
    image = encoded(photo("chelsea", (320, 240)), "JPEG", quality=92)
    done = stack.wait(stack.submit(image, "image/jpeg")["job_id"])

    assert done["status"] == "succeeded", done
    assert done["model"] == done["result"]["model"] == DEFAULT_MODEL


def test_an_unknown_model_is_refused_before_any_job_exists(stack):
    response = requests.post(
        f"{stack.api_url}/v1/jobs",
        json={"content_type": "image/jpeg", "content_length": 1000, "model": "birefnet-general"},
        headers=stack.headers,
        timeout=30,
    )

    assert response.status_code == 400
    assert response.json()["error"]["details"]["models"] == list(MODELS)
