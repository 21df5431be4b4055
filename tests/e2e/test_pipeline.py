"""End to end, over HTTP exactly as a frontend does it, against the stack deployed to LocalStack."""

import io
import os
import re
import time
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from tests.support.deployed_stack import ENDPOINT

DATA = os.path.join(os.path.dirname(__file__), "..", "data")


def photo_bytes(name: str, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.open(os.path.join(DATA, name)).convert("RGB").save(buffer, fmt, quality=92)
    return buffer.getvalue()


def test_health(stack):
    response = requests.get(f"{stack.api_url}/v1/health", timeout=10)

    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "photo, output, mode",
    [("astronaut.png", "png", "RGBA"), ("chelsea.png", "webp", "RGBA"), ("coffee.png", "mask", "L")],
)
def test_photo_comes_back_as_a_cutout(stack, photo, output, mode):
    original = Image.open(os.path.join(DATA, photo))
    job = stack.submit(photo_bytes(photo), "image/jpeg", output=output, filename=photo)

    done = stack.wait(job["job_id"])

    assert done["status"] == "succeeded", done
    assert list(done["stages"]) == ["awaiting_upload", "normalizing", "queued", "processing", "succeeded"]
    result = done["result"]
    assert (result["width"], result["height"]) == original.size
    download = requests.get(result["url"], timeout=30)
    assert download.status_code == 200
    assert len(download.content) == result["bytes"]
    cutout = Image.open(io.BytesIO(download.content))
    assert cutout.size == original.size and cutout.mode == mode
    alpha = cutout.getchannel("A") if mode == "RGBA" else cutout
    width, height = cutout.size
    assert alpha.getpixel((2, 2)) == 0, "a corner is background: transparent"
    assert alpha.getpixel((width // 2, height // 2)) >= 250, "the centre is the subject: opaque"
    extension = "webp" if output == "webp" else "png"
    stack.assert_keys_settle(job["job_id"], {f"results/{job['job_id']}.{extension}"})


def test_corrupt_upload_ends_failed_with_its_code(stack):
    garbage = os.urandom(4096)
    job = stack.submit(garbage, "image/jpeg")

    done = stack.wait(job["job_id"])

    assert done["status"] == "failed"
    assert done["error"]["code"] == "unsupported_format"
    assert done["result"] is None
    stack.assert_keys_settle(job["job_id"], set())


def test_s3_refuses_bytes_other_than_the_declared_ones(stack):
    declared = photo_bytes("chelsea.png")
    job = stack.create_job(content_type="image/jpeg", content_length=len(declared))
    upload = job["upload"]

    longer = requests.put(upload["url"], data=declared + b"extra", headers={"Content-Type": "image/jpeg"}, timeout=30)
    other_type = requests.put(
        upload["url"], data=declared, headers={**upload["headers"], "Content-Type": "image/png"}, timeout=30
    )

    assert longer.status_code == 403 and other_type.status_code == 403
    assert stack.get_job(job["job_id"])["status"] == "awaiting_upload"


def test_cancelled_job_is_never_processed(stack):
    image = photo_bytes("chelsea.png")
    job = stack.create_job(content_type="image/jpeg", content_length=len(image))

    cancel = requests.delete(f"{stack.api_url}/v1/jobs/{job['job_id']}", headers=stack.headers, timeout=10)
    put = requests.put(job["upload"]["url"], data=image, headers=job["upload"]["headers"], timeout=30)
    stack.wait_until(lambda: not stack.keys_of(job["job_id"]), "the upload is deleted")

    assert cancel.status_code == 200 and put.status_code == 200
    final = stack.get_job(job["job_id"])
    assert final["status"] == "cancelled" and final["result"] is None
    assert "normalizing" not in final["stages"]


def test_result_expires_after_its_ttl(stack):
    job = stack.submit(photo_bytes("chelsea.png"), "image/jpeg")
    done = stack.wait(job["job_id"])
    assert done["status"] == "succeeded"

    time.sleep(stack.result_ttl_s + 1)
    expired = stack.get_job(job["job_id"])

    assert expired["status"] == "expired" and expired["result"] is None


def test_unknown_job_is_404(stack):
    response = requests.get(
        f"{stack.api_url}/v1/jobs/00000000-0000-4000-8000-000000000000", headers=stack.headers, timeout=10
    )

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_links_self_is_the_job(stack):
    job = stack.create_job(content_type="image/jpeg", content_length=1000)

    followed = requests.get(job["links"]["self"], headers=stack.headers, timeout=10)

    assert job["links"]["self"] == f"{stack.api_url}/v1/jobs/{job['job_id']}"
    assert followed.status_code == 200 and followed.json()["job_id"] == job["job_id"]


def test_links_self_on_the_apis_own_host_name(stack):
    """The URL form AWS uses, <api>.execute-api.<domain>/<stage>, which LocalStack routes by host."""
    api_id, stage = re.search(r"/restapis/([^/]+)/([^/]+)/_user_request_", stack.api_url).groups()
    host = f"{api_id}.execute-api.localhost.localstack.cloud:{urlsplit(ENDPOINT).port}"
    body = {"content_type": "image/jpeg", "content_length": 1000}
    created = requests.post(
        f"{ENDPOINT}/{stage}/v1/jobs", json=body, headers={"Host": host, **stack.headers}, timeout=10
    )
    link = urlsplit(created.json()["links"]["self"])

    # That name resolves to 127.0.0.1 in public DNS, which this offline machine cannot ask.
    followed = requests.get(f"{ENDPOINT}{link.path}", headers={"Host": link.netloc, **stack.headers}, timeout=10)

    assert created.status_code == 201 and (link.netloc, link.path) == (
        host,
        f"/{stage}/v1/jobs/{created.json()['job_id']}",
    )
    assert followed.status_code == 200 and followed.json()["job_id"] == created.json()["job_id"]
