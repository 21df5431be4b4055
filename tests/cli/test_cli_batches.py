"""`cutout remove` of several images as batches, Idempotency-Key on every submit (a retried submit
never makes a second job or batch), and `cutout status` of a batch; against the fake API, which
makes a submit once per key as the API does."""

import json
import shutil
from pathlib import Path

import pytest
import requests

from cutout.errors import ErrorCode
from cutout.settings import Settings
from cutout_cli.main import main
from tests.support import fake_cutout_api as fake

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTOS = [DATA / "chelsea.png", DATA / "coffee.png", DATA / "astronaut.png"]


def copies(folder: Path, count: int) -> list[Path]:
    """count images with distinct names (their cutouts do not overwrite each other)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        source = PHOTOS[index % len(PHOTOS)]
        made.append(Path(shutil.copy(source, folder / f"{index}-{source.name}")))
    return made


def remove(api_url: str, images: list[Path], out: Path, *options: str) -> int:
    return main(["remove", *map(str, images), "--api", api_url, "-o", str(out), *options])


def test_several_images_are_one_batch_each_uploaded_and_written(fake_api, tmp_path, capsys):
    assert remove(fake_api.url, PHOTOS, tmp_path) == 0, capsys.readouterr().err
    assert fake_api.times(fake.CREATE) == []
    [(batch_id, job_ids)] = fake_api.batches.items()
    assert [fake_api.jobs[job_id].body["filename"] for job_id in job_ids] == [photo.name for photo in PHOTOS]
    outputs = [tmp_path / f"{photo.stem}-cutout.png" for photo in PHOTOS]
    out, err = capsys.readouterr()
    assert out.splitlines() == list(map(str, outputs))
    for photo, output in zip(PHOTOS, outputs, strict=True):
        assert output.read_bytes() == photo.read_bytes()
    assert f"(batch {batch_id})" in err
    assert f"cutout: batch {batch_id}, 3 images: `cutout status {batch_id}`" in err


def test_images_are_batched_in_chunks_of_max_batch_jobs_each_with_its_own_idempotency_key(fake_api, tmp_path):
    fake_api.serve_limits(Settings(max_batch_jobs=2))
    images = copies(tmp_path / "in", 5)
    assert remove(fake_api.url, images, tmp_path / "out", "--concurrency", "2") == 0
    assert sorted(len(job_ids) for job_ids in fake_api.batches.values()) == [1, 2, 2]
    keys = fake_api.headers(fake.BATCH, "Idempotency-Key")
    assert len(keys) == 3 and len(set(keys)) == 3 and all(keys)
    assert len(list((tmp_path / "out").iterdir())) == 5


@pytest.mark.parametrize("lost", [fake.unavailable("0"), fake.RESET], ids=["503", "reset"])
def test_a_batch_submit_whose_answer_is_lost_is_sent_again_and_makes_one_batch(fake_api, tmp_path, capsys, lost):
    fake_api.plan(fake.BATCH, [fake.AfterWork(lost)])
    assert remove(fake_api.url, PHOTOS[:2], tmp_path) == 0, capsys.readouterr().err
    first, retry = fake_api.headers(fake.BATCH, "Idempotency-Key")
    assert first == retry
    assert len(fake_api.batches) == 1 and len(fake_api.jobs) == 2


@pytest.mark.parametrize("lost", [fake.unavailable("0"), fake.RESET], ids=["503", "reset"])
def test_a_job_submit_whose_answer_is_lost_is_sent_again_and_makes_one_job(fake_api, tmp_path, capsys, lost):
    fake_api.plan(fake.CREATE, [fake.AfterWork(lost)])
    assert remove(fake_api.url, PHOTOS[:1], tmp_path) == 0, capsys.readouterr().err
    first, retry = fake_api.headers(fake.CREATE, "Idempotency-Key")
    assert first and first == retry
    assert len(fake_api.jobs) == 1


def test_an_idempotency_conflict_while_the_first_submit_runs_is_waited_out(fake_api, tmp_path, capsys):
    still_running = fake.api_error(409, ErrorCode.IDEMPOTENCY_CONFLICT, "the first request is still in progress")
    fake_api.plan(fake.BATCH, [still_running])
    assert remove(fake_api.url, PHOTOS[:2], tmp_path) == 0
    assert "retrying in" in capsys.readouterr().err
    assert len(fake_api.times(fake.BATCH)) == 2 and len(fake_api.batches) == 1


def test_a_bad_item_fails_every_image_of_the_batch_with_the_apis_problems(fake_api, tmp_path, capsys):
    assert remove(fake_api.url, PHOTOS[:2], tmp_path, "--model", "no-such-model") == 1
    err = capsys.readouterr().err
    for index, photo in enumerate(PHOTOS[:2]):
        [line] = [line for line in err.splitlines() if line.startswith(f"cutout: {photo}: ")]
        assert line.startswith(f"cutout: {photo}: bad_request: the batch is not valid: no job was created: ")
        assert f"jobs.{index}.model" in line
    assert fake_api.jobs == {} and fake_api.batches == {}
    assert len(fake_api.times(fake.BATCH)) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_deployment_from_before_batches_gets_one_job_per_image(fake_api, tmp_path):
    del fake_api.limits["max_batch_jobs"]
    assert remove(fake_api.url, PHOTOS[:2], tmp_path) == 0
    assert fake_api.times(fake.BATCH) == [] and len(fake_api.times(fake.CREATE)) == 2


def test_status_of_a_batch_shows_its_status_counts_and_each_job(fake_api, tmp_path, capsys):
    fake_api.hold_at = "queued"
    fake_api.limits["terminal_statuses"].append("queued")
    assert remove(fake_api.url, PHOTOS[:2], tmp_path) == 1
    [(batch_id, job_ids)] = fake_api.batches.items()
    fake_api.hold_at = None
    main(["status", job_ids[0], "--api", fake_api.url])  # the first job moves on: processing
    capsys.readouterr()
    assert main(["status", batch_id, "--api", fake_api.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"batch   {batch_id}",
        "status  running",
        "counts  2 processing",
        f"  {job_ids[0]}  processing",
        f"  {job_ids[1]}  processing",
    ]
    # A job id is asked for first; this one is a batch's.
    assert len(fake_api.times(fake.BATCH_POLL)) == 1


def test_status_json_of_a_finished_batch_is_the_apis_answer(fake_api, tmp_path, capsys):
    assert remove(fake_api.url, PHOTOS[:2], tmp_path) == 0
    [batch_id] = fake_api.batches
    capsys.readouterr()
    assert main(["status", batch_id, "--json", "--api", fake_api.url]) == 0
    batch = json.loads(capsys.readouterr().out)
    assert batch["status"] == "done" and batch["counts"]["succeeded"] == 2
    assert {job["status"] for job in batch["jobs"]} == {"succeeded"}


def test_the_fake_answers_a_key_reused_with_another_body_409_and_a_repeat_the_same_job(fake_api):
    body = {"content_type": "image/png", "content_length": 10, "filename": "a.png"}
    headers = {"Idempotency-Key": "k-1"}
    first = requests.post(f"{fake_api.url}/v1/jobs", json=body, headers=headers, timeout=10)
    again = requests.post(f"{fake_api.url}/v1/jobs", json=body, headers=headers, timeout=10)
    other = requests.post(f"{fake_api.url}/v1/jobs", json=body | {"content_length": 11}, headers=headers, timeout=10)
    assert first.status_code == again.status_code == 201
    assert first.json()["job_id"] == again.json()["job_id"]
    assert (other.status_code, other.json()["error"]["code"]) == (409, ErrorCode.IDEMPOTENCY_CONFLICT)
    assert len(fake_api.jobs) == 1


def test_the_fake_lists_a_keyed_deployments_jobs_newest_first_a_page_at_a_time():
    key = "k" * 20
    with fake.serving(fake.FakeCutoutApi(api_key=key)) as api:
        headers = {"x-api-key": key}
        body = {"jobs": [{"content_type": "image/png", "content_length": n, "filename": f"{n}.png"} for n in (1, 2, 3)]}
        created = requests.post(f"{api.url}/v1/batches", json=body, headers=headers, timeout=10).json()
        newest_first = [job["job_id"] for job in reversed(created["jobs"])]
        first = requests.get(f"{api.url}/v1/jobs?limit=2", headers=headers, timeout=10).json()
        rest = requests.get(
            f"{api.url}/v1/jobs", params={"cursor": first["next_cursor"]}, headers=headers, timeout=10
        ).json()
        assert [job["job_id"] for job in first["jobs"] + rest["jobs"]] == newest_first
        assert rest["next_cursor"] is None
        assert requests.get(f"{api.url}/v1/jobs", timeout=10).status_code == 403
