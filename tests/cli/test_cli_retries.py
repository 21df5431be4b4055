"""The `cutout` command against a fake API on 127.0.0.1 (tests/fake_cutout_api.py) that throttles,
fails and drops connections before it answers: transient answers are waited out, refusals are final."""

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from cutout.errors import ErrorCode
from fake_cutout_api import CREATE, POLL, RESULT, RESET, UPLOAD, api_error, http_date_in, s3_error, throttled, unavailable

from cutout_cli.api import MAX_ATTEMPTS
from cutout_cli.main import main

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTO = DATA / "chelsea.png"
CUTOUT = Path(sys.executable).with_name("cutout")
UNKNOWN_JOB_ID = "0b5a9b5e-1111-4222-8333-444455556666"
SLOW_DOWN = s3_error(503, "SlowDown", "Please reduce your request rate.")


def test_remove_waits_out_throttling_outages_and_a_reset_connection_to_the_cutout(fake_api, tmp_path, capsys):
    fake_api.plan(CREATE, [throttled("2")])
    fake_api.plan(UPLOAD, [SLOW_DOWN])
    fake_api.plan(POLL, [unavailable(), RESET, throttled(http_date_in(3))])
    exit_code = main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_code == 0, err
    # The fake's result is the uploaded object: all of it arrived on the second PUT.
    assert (tmp_path / "chelsea-cutout.png").read_bytes() == PHOTO.read_bytes()
    assert len(fake_api.times(UPLOAD)) == 2
    assert len(fake_api.times(CREATE)) == 2
    assert fake_api.gaps(CREATE)[0] >= 2.0  # Retry-After: 2
    # 503, reset, 429, then processing and succeeded.
    assert len(fake_api.times(POLL)) == 5
    # Retry-After as an HTTP date 3 s ahead, in whole seconds: more than 2 s from the 429.
    assert fake_api.gaps(POLL)[2] >= 2.0
    assert len(fake_api.times(RESULT)) == 1
    assert "chelsea.png: retrying in 2.0 s (too_many_requests: Too Many Requests)" in err
    assert "(SlowDown: Please reduce your request rate.)" in err
    assert "failed" not in err


@pytest.mark.parametrize(
    ("route", "refusal", "reported"),
    [
        (CREATE, api_error(400, ErrorCode.BAD_REQUEST, "content_length: must be at most 26214400"), "bad_request: content_length: must be at most 26214400"),
        (UPLOAD, s3_error(403, "SignatureDoesNotMatch", "The signature does not match."), "SignatureDoesNotMatch: The signature does not match."),
        (POLL, api_error(404, ErrorCode.NOT_FOUND, "no job 'x'"), "not_found: no job 'x'"),
    ],
)
def test_a_refusal_is_reported_at_once_with_its_message(fake_api, tmp_path, capsys, route, refusal, reported):
    fake_api.plan(route, [refusal])
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 1
    assert f"{PHOTO}: {reported}" in capsys.readouterr().err
    assert len(fake_api.times(route)) == 1
    assert list(tmp_path.iterdir()) == []


def test_retries_stop_after_max_attempts_with_the_last_answer(fake_api, tmp_path, capsys):
    fake_api.plan(CREATE, itertools.repeat(unavailable("0")))
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 1
    assert f"{PHOTO}: internal_error: Service Unavailable" in capsys.readouterr().err
    assert len(fake_api.times(CREATE)) == MAX_ATTEMPTS


def test_a_retry_after_beyond_the_timeout_is_not_waited_for(fake_api, tmp_path):
    fake_api.plan(CREATE, [throttled("3600")])
    # A subprocess, so that a client sleeping out the hour fails here instead of hanging the suite.
    run = subprocess.run(
        [CUTOUT, "remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path), "--timeout", "30"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 1
    assert f"{PHOTO}: too_many_requests: Too Many Requests" in run.stderr
    assert len(fake_api.times(CREATE)) == 1


def test_status_waits_out_a_throttled_read(fake_api, capsys):
    fake_api.plan(POLL, [throttled("1")])
    assert main(["status", UNKNOWN_JOB_ID, "--api", fake_api.url]) == 1
    err = capsys.readouterr().err
    assert "cutout: too_many_requests: Too Many Requests (trying again in 1.0 s)" in err
    assert f"cutout: not_found: no job '{UNKNOWN_JOB_ID}'" in err
    assert len(fake_api.times(POLL)) == 2
    assert fake_api.gaps(POLL)[0] >= 1.0
