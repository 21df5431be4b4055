"""The `cutout` command against a fake API on 127.0.0.1 (tests/support/fake_cutout_api.py): the limits
it serves decide what is sent and when polling ends; it throttles, fails and drops connections before
it answers: transient answers are waited out, refusals are final."""

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cutout.errors import ErrorCode
from cutout.settings import Settings
from cutout_cli.api import MAX_ATTEMPTS
from cutout_cli.main import main
from tests.support import fake_cutout_api as fake

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTO = DATA / "chelsea.png"
CUTOUT = Path(sys.executable).with_name("cutout")
UNKNOWN_JOB_ID = "0b5a9b5e-1111-4222-8333-444455556666"
SLOW_DOWN = fake.s3_error(503, "SlowDown", "Please reduce your request rate.")


def test_remove_waits_out_throttling_outages_and_a_reset_connection_to_the_cutout(fake_api, tmp_path, capsys):
    fake_api.plan(fake.CREATE, [fake.throttled("2")])
    fake_api.plan(fake.UPLOAD, [SLOW_DOWN])
    fake_api.plan(fake.POLL, [fake.unavailable(), fake.RESET, fake.throttled(fake.http_date_in(3))])
    exit_code = main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_code == 0, err
    # The fake's result is the uploaded object: all of it arrived on the second PUT.
    assert (tmp_path / "chelsea-cutout.png").read_bytes() == PHOTO.read_bytes()
    assert len(fake_api.times(fake.UPLOAD)) == 2
    assert len(fake_api.times(fake.CREATE)) == 2
    assert fake_api.gaps(fake.CREATE)[0] >= 2.0  # Retry-After: 2
    # 503, reset, 429, then processing and succeeded.
    assert len(fake_api.times(fake.POLL)) == 5
    # Retry-After as an HTTP date 3 s ahead, in whole seconds: more than 2 s from the 429.
    assert fake_api.gaps(fake.POLL)[2] >= 2.0
    assert len(fake_api.times(fake.RESULT)) == 1
    assert "chelsea.png: retrying in 2.0 s (too_many_requests: Too Many Requests)" in err
    assert "(SlowDown: Please reduce your request rate.)" in err
    assert "failed" not in err


@pytest.mark.parametrize(
    ("route", "refusal", "reported"),
    [
        # The API has the last word: a limit lowered since the client asked for the limits.
        (
            fake.CREATE,
            fake.api_error(413, ErrorCode.PAYLOAD_TOO_LARGE, "the limit is 1000 bytes"),
            "payload_too_large: the limit is 1000 bytes",
        ),
        (
            fake.UPLOAD,
            fake.s3_error(403, "SignatureDoesNotMatch", "The signature does not match."),
            "SignatureDoesNotMatch: The signature does not match.",
        ),
        (fake.POLL, fake.api_error(404, ErrorCode.NOT_FOUND, "no job 'x'"), "not_found: no job 'x'"),
    ],
)
def test_a_refusal_is_reported_at_once_with_its_message(fake_api, tmp_path, capsys, route, refusal, reported):
    fake_api.plan(route, [refusal])
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 1
    assert f"{PHOTO}: {reported}" in capsys.readouterr().err
    assert len(fake_api.times(route)) == 1
    assert list(tmp_path.iterdir()) == []


def test_retries_stop_after_max_attempts_with_the_last_answer(fake_api, tmp_path, capsys):
    fake_api.plan(fake.CREATE, itertools.repeat(fake.unavailable("0")))
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 1
    assert f"{PHOTO}: internal_error: Service Unavailable" in capsys.readouterr().err
    assert len(fake_api.times(fake.CREATE)) == MAX_ATTEMPTS


def test_a_retry_after_beyond_the_timeout_is_not_waited_for(fake_api, tmp_path):
    fake_api.plan(fake.CREATE, [fake.throttled("3600")])
    # A subprocess, so that a client sleeping out the hour fails here instead of hanging the suite.
    run = subprocess.run(
        [CUTOUT, "remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path), "--timeout", "30"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert f"{PHOTO}: too_many_requests: Too Many Requests" in run.stderr
    assert len(fake_api.times(fake.CREATE)) == 1


def test_status_waits_out_a_throttled_read(fake_api, capsys):
    fake_api.plan(fake.POLL, [fake.throttled("1")])
    assert main(["status", UNKNOWN_JOB_ID, "--api", fake_api.url]) == 1
    err = capsys.readouterr().err
    assert "cutout: too_many_requests: Too Many Requests (trying again in 1.0 s)" in err
    # Neither a job nor (asked next) a batch.
    assert f"cutout: not_found: no job or batch '{UNKNOWN_JOB_ID}'" in err
    assert len(fake_api.times(fake.POLL)) == 2
    assert fake_api.gaps(fake.POLL)[0] >= 1.0


def padded_png(path: Path, size: int) -> Path:
    """A small PNG with zero bytes after it, size bytes in all (readers stop at its end)."""
    Image.new("RGB", (8, 8), "red").save(path, "PNG")
    path.write_bytes(path.read_bytes().ljust(size, b"\0"))
    return path


def test_an_image_over_the_served_upload_limit_is_refused_before_any_job(fake_api, tmp_path, capsys):
    fake_api.serve_limits(Settings(max_upload_bytes=1000))
    at_limit, over = padded_png(tmp_path / "at-limit.png", 1000), padded_png(tmp_path / "over.png", 2000)
    assert main(["remove", str(at_limit), str(over), "--api", fake_api.url, "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{over}: payload_too_large: the image is 2000 bytes; the limit is 1000 bytes" in err
    assert (tmp_path / "out" / "at-limit-cutout.png").read_bytes() == at_limit.read_bytes()
    assert [job.content_length for job in fake_api.jobs.values()] == [1000]


def test_the_type_declared_is_the_first_served_upload_type_whose_signatures_match(fake_api, tmp_path, capsys):
    # "PNG" at offset 1 is in every PNG, so this type, listed before image/png, wins; JPEG is not served.
    every_png = {"content_type": "image/webp", "signatures": [{"offset": 1, "hex": b"PNG".hex()}]}
    served = [every_png] + [t for t in fake_api.limits["upload_types"] if t["content_type"] != "image/jpeg"]
    fake_api.limits["upload_types"] = served
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8), "red").save(jpeg, "JPEG")
    assert main(["remove", str(PHOTO), str(jpeg), "--api", fake_api.url, "-o", str(tmp_path)]) == 1
    assert f"{jpeg}: unsupported_media_type" in capsys.readouterr().err
    assert [job.content_type for job in fake_api.jobs.values()] == ["image/webp"]


def test_polling_stops_at_a_status_the_api_lists_as_terminal(fake_api, tmp_path, capsys):
    fake_api.limits["terminal_statuses"].append("processing")
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 1
    assert f"{PHOTO}: the job ended processing" in capsys.readouterr().err
    assert len(fake_api.times(fake.POLL)) == 1
    assert list(tmp_path.iterdir()) == []


def test_the_limits_are_asked_once_per_run_and_a_throttled_ask_is_waited_out(fake_api, tmp_path, capsys):
    fake_api.plan(fake.LIMITS, [fake.throttled("1")])
    coffee = DATA / "coffee.png"
    assert main(["remove", str(PHOTO), str(coffee), "--api", fake_api.url, "-o", str(tmp_path)]) == 0
    assert "cutout: too_many_requests: Too Many Requests (trying again in 1.0 s)" in capsys.readouterr().err
    assert len(fake_api.times(fake.LIMITS)) == 2
    # Both images in one batch.
    assert len(fake_api.times(fake.BATCH)) == 1
    assert [len(job_ids) for job_ids in fake_api.batches.values()] == [2]


def test_an_api_without_limits_fails_the_run_before_any_job(fake_api, tmp_path, capsys):
    fake_api.plan(fake.LIMITS, [fake.api_error(404, ErrorCode.NOT_FOUND, "no such route")])
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 1
    assert "cutout: not_found: no such route" in capsys.readouterr().err
    assert fake_api.times(fake.CREATE) == []


def test_the_output_options_reach_the_api_and_a_jpeg_is_written_as_jpg(fake_api, tmp_path, capsys):
    argv = ["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path), "--format", "jpeg"]
    argv += ["--bg-color", "#102030", "--crop", "--crop-margin", "5%", "--max-side", "512"]
    assert main(argv) == 0, capsys.readouterr().err
    (job,) = fake_api.jobs.values()
    assert job.output == {"format": "jpeg", "bg_color": "#102030", "crop": True, "crop_margin": "5%", "max_side": 512}
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "chelsea-cutout.jpg")]


def test_without_options_only_the_format_is_sent(fake_api, tmp_path):
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 0
    assert [job.output for job in fake_api.jobs.values()] == [{"format": "png"}]


def test_bad_output_options_are_reported_with_the_apis_problems_and_no_traceback(fake_api, tmp_path):
    # A subprocess, so that what a person sees on stderr is all checked, a traceback included.
    run = subprocess.run(
        [CUTOUT, "remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]
        + ["--format", "jpeg", "--bg-color", "#10203080", "--crop-margin", "9000px", "--max-side", "8"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    (reported,) = [line for line in run.stderr.splitlines() if line.startswith(f"cutout: {PHOTO}: ")]
    assert reported.startswith(f"cutout: {PHOTO}: bad_request: the output options are not valid: ")
    for field in ("output.bg_color must be opaque", "output.crop_margin must be", "output.max_side must be"):
        assert field in reported
    assert "Traceback" not in run.stderr
    assert fake_api.jobs == {}
    assert list(tmp_path.iterdir()) == []


def test_status_prints_the_subject_and_the_applied_options(fake_api, tmp_path, capsys):
    argv = ["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path), "--format", "jpeg", "--max-side", "300"]
    assert main(argv) == 0
    (job_id,) = fake_api.jobs
    capsys.readouterr()
    assert main(["status", job_id, "--api", fake_api.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "subject 451x300 at (0, 0)" in lines
    assert "output  format jpeg, bg_color #FFFFFF, max_side 300" in lines
