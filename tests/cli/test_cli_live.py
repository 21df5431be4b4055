"""The installed `cutout` command against the local stack (`make up`), with the key `make up` created:
from $CUTOUT_API_KEY, or from .local/stack.json; and `cutout keys` against its API Gateway."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cutout.errors import JobRejected
from cutout.models import DEFAULT_MODEL, chosen_model
from cutout_cli.api import CutoutApi, job_body
from cutout_cli.config import API_KEY_VARIABLE, API_URL_VARIABLE
from tests.support.deployed_stack import ENDPOINT

REPO = Path(__file__).resolve().parents[2]

DATA = Path(__file__).resolve().parents[1] / "data"
CUTOUT = Path(sys.executable).with_name("cutout")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UNKNOWN_JOB_ID = "0b5a9b5e-1111-4222-8333-444455556666"


def cutout(*args: str, cwd: Path | None = None, api_key: str | None = None) -> subprocess.CompletedProcess:
    """The command as a person runs it; api_key: in $CUTOUT_API_KEY (None: only what it finds itself)."""
    environ = {key: value for key, value in os.environ.items() if key not in (API_URL_VARIABLE, API_KEY_VARIABLE)}
    environ |= {API_KEY_VARIABLE: api_key} if api_key else {}
    # `cutout keys` reaches LocalStack's API Gateway the way boto3 reads an endpoint itself.
    environ["AWS_ENDPOINT_URL"] = ENDPOINT
    return subprocess.run([CUTOUT, *args], capture_output=True, text=True, env=environ, cwd=cwd, timeout=300)


def test_remove_writes_a_transparent_cutout_per_image_of_a_batch(live_api_url, live_api_key, tmp_path):
    photos = [DATA / "chelsea.png", DATA / "astronaut.png"]
    run = cutout(
        "remove",
        *map(str, photos),
        *("--api", live_api_url, "-o", str(tmp_path / "out"), "--concurrency", "2"),
        api_key=live_api_key,
    )
    assert run.returncode == 0, run.stderr
    written = [tmp_path / "out" / "chelsea-cutout.png", tmp_path / "out" / "astronaut-cutout.png"]
    assert run.stdout.split() == list(map(str, written))
    for photo, output in zip(photos, written, strict=True):
        with Image.open(output) as cutout_image, Image.open(photo) as original:
            assert (cutout_image.format, cutout_image.mode, cutout_image.size) == ("PNG", "RGBA", original.size)
    # Not a terminal: one plain progress line per stage, no bars or cursor moves.
    assert "chelsea.png: uploading" in run.stderr and "chelsea.png: done" in run.stderr
    assert "\x1b[" not in run.stderr
    # Both in one batch, which status reads back with its jobs.
    (batch_id,) = [line.split()[2].rstrip(",") for line in run.stderr.splitlines() if line.startswith("cutout: batch ")]
    status = cutout("status", batch_id, "--api", live_api_url, api_key=live_api_key)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[:3] == [f"batch   {batch_id}", "status  done", "counts  2 succeeded"]
    assert len(lines) == 5 and all(line.endswith("  succeeded") for line in lines[3:])


def test_remove_finds_the_api_and_its_key_in_the_stack_file_and_writes_next_to_the_input(live_api_url, tmp_path):
    photo = tmp_path / "coffee.png"
    photo.write_bytes((DATA / "coffee.png").read_bytes())
    run = cutout("remove", str(photo), "--format", "webp", cwd=Path(__file__).parent)
    assert run.returncode == 0, run.stderr
    with Image.open(tmp_path / "coffee-cutout.webp") as cutout_image:
        assert (cutout_image.format, cutout_image.mode, cutout_image.size) == ("WEBP", "RGBA", (600, 400))


def test_some_images_failing_exits_1_with_the_jobs_error(live_api_url, live_api_key, tmp_path):
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(PNG_SIGNATURE + b"not an image behind the signature" * 64)
    run = cutout(
        "remove",
        str(damaged),
        str(DATA / "chelsea.png"),
        "--format",
        "mask",
        "--api",
        live_api_url,
        "-o",
        str(tmp_path),
        api_key=live_api_key,
    )
    assert run.returncode == 1
    assert f"{damaged}: corrupt_image: the PNG image is damaged or incomplete and cannot be read" in run.stderr
    with Image.open(tmp_path / "chelsea-cutout.png") as mask:
        assert (mask.mode, mask.size) == ("L", (451, 300))


def test_models_lists_the_deployments_models_with_one_default(live_api_url, live_api_key):
    run = cutout("models", "--api", live_api_url, "--api-key", live_api_key)
    assert run.returncode == 0, run.stderr
    models = CutoutApi(live_api_url, api_key=live_api_key).models()
    assert [line.split()[0] for line in run.stdout.splitlines()] == [model["name"] for model in models]
    (default,) = [line.split()[0] for line in run.stdout.splitlines() if line.split()[1] == "default"]
    assert [model["name"] for model in models if model["default"]] == [default]


def test_an_unknown_model_is_refused_by_the_api_with_the_valid_ones(live_api_url, live_api_key, tmp_path):
    photo = str(DATA / "chelsea.png")
    argv = ("remove", photo, "--model", "no-such-model", "--api", live_api_url, "-o", str(tmp_path))
    run = cutout(*argv, api_key=live_api_key)
    assert run.returncode == 1
    with pytest.raises(JobRejected) as refused:
        chosen_model("no-such-model", DEFAULT_MODEL)
    assert f"{photo}: bad_request: {refused.value.message}: " in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_status_and_cancel_of_a_job_waiting_for_its_upload(live_api_url, live_api_key):
    api = CutoutApi(live_api_url, api_key=live_api_key)
    job = api.create_job(job_body("image/png", 1234, "never-sent.png", {"format": "png"}))
    (default_model,) = [model["name"] for model in api.models() if model["default"]]
    status = cutout("status", job["job_id"], "--api", live_api_url, api_key=live_api_key)
    assert status.returncode == 0, status.stderr
    assert f"job     {job['job_id']}\nstatus  awaiting_upload\nmodel   {default_model}" in status.stdout
    cancel = cutout("cancel", job["job_id"], "--api", live_api_url, api_key=live_api_key)
    assert (cancel.returncode, cancel.stdout) == (0, f"{job['job_id']} cancelled\n")
    again = cutout("cancel", job["job_id"], "--api", live_api_url, api_key=live_api_key)
    assert again.returncode == 1
    assert "not_cancellable: the job is cancelled" in again.stderr


def test_status_of_an_unknown_id_exits_1_with_not_found(live_api_url, live_api_key):
    run = cutout("status", UNKNOWN_JOB_ID, "--api", live_api_url, api_key=live_api_key)
    assert run.returncode == 1
    assert f"cutout: not_found: no job or batch '{UNKNOWN_JOB_ID}'" in run.stderr


def test_without_a_key_the_api_refuses_and_the_cli_says_how_to_send_one(live_api_url, tmp_path):
    # Outside the repository: no stack file to find a key in.
    run = cutout("models", "--api", live_api_url, cwd=tmp_path)
    assert run.returncode == 1
    assert "403" not in run.stdout
    assert f"(the API needs a valid API key: pass --api-key KEY or set {API_KEY_VARIABLE};" in run.stderr


def test_a_key_created_in_a_plan_works_is_listed_and_once_revoked_is_gone(live_api_url):
    plan = next(iter(json.loads((REPO / "cdk.json").read_text())["context"]["usage_plans"]))
    created = cutout("keys", "create", "--plan", plan, "--name", "cli-live-test", "--api", live_api_url)
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(maxsplit=1) for line in created.stdout.splitlines())
    assert (fields["name"], fields["plan"]) == ("cli-live-test", plan)
    try:
        listed = cutout("keys", "list", "--api", live_api_url)
        assert listed.returncode == 0, listed.stderr
        [line] = [line for line in listed.stdout.splitlines() if line.startswith(fields["id"])]
        assert line.split()[1:4] == ["cli-live-test", plan, "enabled"]
        assert fields["value"] not in listed.stdout
        models = cutout("models", "--api", live_api_url, "--api-key", fields["value"], cwd=Path("/"))
        assert models.returncode == 0, models.stderr
    finally:
        revoked = cutout("keys", "revoke", fields["id"], "--api", live_api_url)
    assert revoked.returncode == 0, revoked.stderr
    assert fields["id"] not in cutout("keys", "list", "--api", live_api_url).stdout
    again = cutout("keys", "revoke", fields["id"], "--api", live_api_url)
    assert again.returncode == 1
    assert f"no API key '{fields['id']}'" in again.stderr
