"""API keys end to end on the local stack: API Gateway refuses requests without a valid key, each
key sees only its own jobs and batches, a retried submit with an Idempotency-Key makes no second
job, and a batch of real photos runs to done (or, with one bad item, is not created at all)."""

import io
import uuid
from pathlib import Path

import pytest
import requests
from PIL import Image

from cutout_cli.keys import create_key, rest_api_id_of, revoke_key, usage_plans

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")
BATCH_SIZE = 20


def photo_variants(count: int) -> list[bytes]:
    """count different JPEGs cut from the test photos: each a distinct crop and size of a real photo."""
    variants = []
    for index in range(count):
        photo = Image.open(DATA / PHOTOS[index % len(PHOTOS)]).convert("RGB")
        inset = 4 * (index // len(PHOTOS))
        crop = photo.crop((inset, inset, photo.width - inset, photo.height - inset))
        crop.thumbnail((320 - 8 * index, 320 - 8 * index))
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=90)
        variants.append(buffer.getvalue())
    return variants


@pytest.fixture(scope="module")
def other_key(stack):
    """A second client's key, in the same plan as the stack's own; revoked afterwards."""
    client, api_id = stack.client("apigateway"), rest_api_id_of(stack.api_url)
    key = create_key(client, api_id, next(iter(usage_plans(client, api_id))), name=f"e2e-{uuid.uuid4().hex[:8]}")
    yield {"x-api-key": key.value}
    revoke_key(client, api_id, key.id)


def post_job(stack, headers: dict, **body) -> requests.Response:
    body = {"content_type": "image/jpeg", "content_length": 1000, **body}
    return requests.post(f"{stack.api_url}/v1/jobs", json=body, headers=headers, timeout=30)


def job_count(stack) -> int:
    return stack.client("dynamodb").scan(TableName=stack.table, Select="COUNT")["Count"]


def test_health_needs_no_key_and_everything_else_refuses_a_missing_or_unknown_one(stack):
    before = job_count(stack)

    health = requests.get(f"{stack.api_url}/v1/health", timeout=30)
    missing = post_job(stack, {})
    unknown = post_job(stack, {"x-api-key": "not-a-key-" + uuid.uuid4().hex})
    listing = requests.get(f"{stack.api_url}/v1/jobs", timeout=30)
    batch = requests.post(f"{stack.api_url}/v1/batches", json={"jobs": [{}]}, timeout=30)

    assert health.status_code == 200
    # API Gateway refuses them before the function runs. LocalStack 2026.3 answers its own
    # {"message": "Forbidden"} body, not the gateway response's template (tests/infra assert that).
    assert [r.status_code for r in (missing, unknown, listing, batch)] == [403] * 4
    assert job_count(stack) == before


def test_one_keys_job_is_not_found_to_another_for_reading_cancelling_and_listing(stack, other_key):
    job = post_job(stack, stack.headers).json()
    job_url = f"{stack.api_url}/v1/jobs/{job['job_id']}"

    read = requests.get(job_url, headers=other_key, timeout=30)
    cancel = requests.delete(job_url, headers=other_key, timeout=30)
    theirs = requests.get(f"{stack.api_url}/v1/jobs", headers=other_key, timeout=30)
    mine = requests.get(f"{stack.api_url}/v1/jobs", params={"limit": 100}, headers=stack.headers, timeout=30)

    assert (read.status_code, cancel.status_code) == (404, 404)
    assert read.json()["error"]["code"] == "not_found"
    assert job["job_id"] not in [listed["job_id"] for listed in theirs.json()["jobs"]]
    assert mine.status_code == 200 and job["job_id"] in [listed["job_id"] for listed in mine.json()["jobs"]]
    assert stack.get_job(job["job_id"])["status"] == "awaiting_upload"


def test_a_replayed_submit_returns_the_same_job_and_a_changed_body_is_a_conflict(stack):
    key = {**stack.headers, "Idempotency-Key": uuid.uuid4().hex}

    first = post_job(stack, key, filename="once.jpg")
    again = post_job(stack, key, filename="once.jpg")
    changed = post_job(stack, key, filename="twice.jpg")

    assert first.status_code == again.status_code == 201
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.json()["upload"]["url"]
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "idempotency_conflict"


def test_a_batch_of_real_photos_runs_to_done_with_every_result(stack):
    photos = photo_variants(BATCH_SIZE)
    body = {"jobs": [{"content_type": "image/jpeg", "content_length": len(photo)} for photo in photos]}

    created = requests.post(f"{stack.api_url}/v1/batches", json=body, headers=stack.headers, timeout=60)
    assert created.status_code == 201, created.text
    batch = created.json()
    for photo, job in zip(photos, batch["jobs"], strict=True):
        upload = job["upload"]
        put = requests.request(upload["method"], upload["url"], data=photo, headers=upload["headers"], timeout=60)
        assert put.status_code == 200
    batch_url = batch["links"]["self"]
    stack.wait_until(
        lambda: requests.get(batch_url, headers=stack.headers, timeout=30).json()["status"] == "done",
        "the batch is done",
        timeout_s=600,
    )

    done = requests.get(batch_url, headers=stack.headers, timeout=30).json()
    assert done["counts"]["succeeded"] == BATCH_SIZE, done["counts"]
    for job in done["jobs"]:
        result = stack.get_job(job["job_id"])["result"]
        assert requests.get(result["url"], timeout=30).status_code == 200


def test_a_batch_with_one_bad_item_creates_no_job(stack):
    before = job_count(stack)
    items = [{"content_type": "image/jpeg", "content_length": 1000}] * 5
    items[3] = {"content_type": "image/jpeg", "content_length": 1000, "output": {"format": "tiff"}}

    refused = requests.post(f"{stack.api_url}/v1/batches", json={"jobs": items}, headers=stack.headers, timeout=30)

    assert refused.status_code == 400
    assert [problem["field"] for problem in refused.json()["error"]["details"]["problems"]] == ["jobs.3.output.format"]
    assert job_count(stack) == before


def test_another_keys_batch_is_not_found(stack, other_key):
    body = {"jobs": [{"content_type": "image/jpeg", "content_length": 1000}]}
    batch = requests.post(f"{stack.api_url}/v1/batches", json=body, headers=stack.headers, timeout=30).json()

    theirs = requests.get(batch["links"]["self"], headers=other_key, timeout=30)

    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
