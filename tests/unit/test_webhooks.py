"""The domain rules of notifications: callback URLs, signatures, the retry schedule, the events a
job's end makes, and the operator counters."""

import hmac
import time
from dataclasses import replace

import pytest

from cutout.batches import Batch
from cutout.errors import ErrorCode, ErrorDetail, JobRejected
from cutout.events import JobEvent, batch_detail, has_ended, job_detail
from cutout.jobs import TERMINAL_STATUSES, JobRequest, JobStatus, ResultFile, iso, new_job
from cutout.output import OutputFormat
from cutout.settings import Settings
from cutout.stats import BUCKET_S, DAY_S, HOUR_S, JobCounts, bucket_of, buckets_within, end_counter, summary
from cutout.webhooks import (
    MAX_CALLBACK_URL_CHARS,
    MAX_RETRY_DELAY_S,
    SIGNATURE_TOLERANCE_S,
    callback_url_problem,
    is_public,
    is_success,
    retry_delay_s,
    signature,
    signature_is_valid,
)

PUBLIC = "93.184.216.34"
S = JobStatus


def resolving_to(*addresses: str):
    """A resolver that answers these addresses for any host, and records the hosts asked."""
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return list(addresses)

    resolve.asked = asked
    return resolve


def no_dns(host: str) -> list[str]:
    raise AssertionError(f"{host} was looked up")


@pytest.mark.parametrize(
    "url", ["https://93.184.216.34/hook", "https://93.184.216.34:8443/a?b=c", "https://[2606:2800:220:1::]/hook"]
)
def test_a_public_ip_literal_needs_no_dns(url):
    assert callback_url_problem(url, allow_private=False) is None


def test_a_host_name_is_accepted_when_every_address_is_public():
    resolve = resolving_to(PUBLIC, "2606:2800:220:1:248:1893:25c8:1946")

    assert callback_url_problem("https://hooks.example.com/cutout", False, resolve) is None
    assert resolve.asked == ["hooks.example.com"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the instance metadata service
        "169.254.10.10",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_a_private_loopback_link_local_or_metadata_address_is_refused(address):
    assert not is_public(address)
    assert "public addresses only" in callback_url_problem("https://hooks.example.com/", False, resolving_to(address))


def test_one_private_address_among_public_ones_is_refused():
    problem = callback_url_problem("https://hooks.example.com/", False, resolving_to(PUBLIC, "10.0.0.7"))

    assert problem is not None and "public" in problem


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "https://10.1.2.3/", "https://169.254.169.254/latest/"])
def test_a_private_ip_literal_is_refused_without_a_lookup(url):
    assert "public addresses only" in callback_url_problem(url, allow_private=False)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://93.184.216.34/hook", "must be an https URL"),
        ("ftp://93.184.216.34/hook", "must be an https URL"),
        ("93.184.216.34/hook", "must be an https URL"),
        ("https://user:pass@93.184.216.34/hook", "must not carry credentials"),
        ("https://token@93.184.216.34/hook", "must not carry credentials"),
        ("https:///hook", "must name a host"),
        ("https://93.184.216.34:99999/hook", "is not a URL"),
        ("https://[::1/hook", "is not a URL"),
    ],
)
def test_a_url_that_is_not_https_or_carries_credentials_is_refused_before_any_lookup(url, problem):
    assert callback_url_problem(url, False, no_dns) == problem


def test_an_unresolvable_host_is_refused():
    assert "does not resolve" in callback_url_problem("https://hooks.example.com/", False, resolving_to())
    assert "does not resolve" in callback_url_problem("https://no-such-host.invalid/hook", allow_private=False)


def test_a_url_over_the_length_limit_is_refused():
    base = "https://93.184.216.34/"
    longest = base + "a" * (MAX_CALLBACK_URL_CHARS - len(base))

    assert callback_url_problem(longest, False) is None
    assert callback_url_problem(longest + "a", False, no_dns) == f"must be at most {MAX_CALLBACK_URL_CHARS} characters"


def test_allow_private_takes_http_and_private_addresses_but_still_no_credentials():
    assert callback_url_problem("http://127.0.0.1:8080/hook", allow_private=True) is None
    assert callback_url_problem("https://10.1.2.3/hook", allow_private=True) is None
    assert callback_url_problem("http://localhost:8080/hook", allow_private=True) is None
    assert callback_url_problem("http://u:p@127.0.0.1/", True, no_dns) == "must not carry credentials"
    assert callback_url_problem("ftp://127.0.0.1/", True, no_dns) == "must be an https or http URL"


def test_a_job_is_refused_with_its_callback_url_named():
    request = JobRequest("image/png", 10, callback_url="https://10.1.2.3/hook")

    with pytest.raises(JobRejected) as refused:
        new_job("job", request, Settings(), time.time())

    [problem] = refused.value.details["problems"]
    assert problem["field"] == "callback_url" and "public" in problem["problem"]
    assert (
        new_job("job", request, Settings(webhook_allow_private=True), time.time()).callback_url == request.callback_url
    )


def test_webhook_allow_private_reads_true_or_false_only():
    assert Settings.from_env({"WEBHOOK_ALLOW_PRIVATE": "true"}).webhook_allow_private is True
    assert Settings.from_env({"WEBHOOK_ALLOW_PRIVATE": "False"}).webhook_allow_private is False
    assert Settings.from_env({}).webhook_allow_private is False
    with pytest.raises(ValueError):
        Settings.from_env({"WEBHOOK_ALLOW_PRIVATE": "yes"})


SECRET, BODY, NOW = "whsec-test", b'{"job_id":"j","status":"succeeded"}', 1_767_225_600


def test_a_signature_verifies_for_its_body_and_secret():
    header = signature(SECRET, NOW, BODY)

    assert header.startswith(f"t={NOW},v1=")
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, "sha256").hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert signature_is_valid(SECRET, header, BODY, NOW + 1)


def test_a_tampered_body_or_another_secret_does_not_verify():
    header = signature(SECRET, NOW, BODY)

    assert not signature_is_valid(SECRET, header, BODY.replace(b"succeeded", b"failed"), NOW)
    assert not signature_is_valid("another secret", header, BODY, NOW)
    assert not signature_is_valid(SECRET, header.replace(f"t={NOW}", f"t={NOW + 1}"), BODY, NOW)


def test_a_signature_outside_the_replay_window_does_not_verify():
    header = signature(SECRET, NOW, BODY)

    assert signature_is_valid(SECRET, header, BODY, NOW + SIGNATURE_TOLERANCE_S)
    assert not signature_is_valid(SECRET, header, BODY, NOW + SIGNATURE_TOLERANCE_S + 1)
    assert not signature_is_valid(SECRET, header, BODY, NOW - SIGNATURE_TOLERANCE_S - 1)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1767225600", "garbage", "t=1767225600;v1=00"])
def test_a_malformed_signature_header_does_not_verify(header):
    assert not signature_is_valid(SECRET, header, BODY, NOW)


def test_retries_wait_longer_each_time_up_to_the_longest_sqs_allows():
    delays = [retry_delay_s(attempt, 5) for attempt in range(1, 12)]

    assert delays[:4] == [5, 20, 80, 320]
    assert all(later > earlier for earlier, later in zip(delays, delays[1:8], strict=False))
    assert max(delays) == MAX_RETRY_DELAY_S == 43200
    assert delays[-1] == MAX_RETRY_DELAY_S


def test_the_default_schedule_ends_within_sqs_limits():
    settings = Settings()
    waits = [retry_delay_s(attempt, settings.webhook_first_retry_s) for attempt in range(1, settings.webhook_attempts)]

    assert all(wait <= MAX_RETRY_DELAY_S for wait in waits)
    # A message is kept 4 days by default: every attempt happens before it could be lost.
    assert sum(waits) < 4 * DAY_S


@pytest.mark.parametrize("status, success", [(199, False), (200, True), (204, True), (299, True), (301, False)])
def test_only_a_2xx_answer_is_a_delivery(status, success):
    assert is_success(status) is success


def test_every_terminal_status_has_an_event_name_and_detail_type():
    names = {status: JobEvent.of(status) for status in TERMINAL_STATUSES}

    assert {status: (event.value, event.detail_type) for status, event in names.items()} == {
        S.SUCCEEDED: ("job.succeeded", "Job Succeeded"),
        S.FAILED: ("job.failed", "Job Failed"),
        S.CANCELLED: ("job.cancelled", "Job Cancelled"),
        S.EXPIRED: ("job.expired", "Job Expired"),
    }
    with pytest.raises(KeyError):
        JobEvent.of(S.PROCESSING)


@pytest.mark.parametrize(
    "before, after, ended",
    [
        (S.PROCESSING, S.SUCCEEDED, True),
        (S.QUEUED, S.CANCELLED, True),
        (S.AWAITING_UPLOAD, S.EXPIRED, True),
        (S.NORMALIZING, S.FAILED, True),
        (None, S.FAILED, True),
        (S.QUEUED, S.PROCESSING, False),
        (S.PROCESSING, S.PROCESSING, False),
        (None, S.AWAITING_UPLOAD, False),
        (S.SUCCEEDED, S.SUCCEEDED, False),
        (S.FAILED, S.FAILED, False),
    ],
)
def test_only_the_move_into_a_terminal_status_is_an_end(before, after, ended):
    assert has_ended(before, after) is ended


def ended_job(status: JobStatus, **changes):
    job = new_job("job-1", JobRequest("image/png", 10, owner="key-a", batch_id="batch-1"), Settings(), NOW)
    return replace(job, status=status, **changes)


def test_a_job_detail_carries_the_view_without_urls():
    result = ResultFile(OutputFormat.PNG, "image/png", 64, 48, 1234, None, "u2netp")
    detail = job_detail(ended_job(S.SUCCEEDED, result=result, callback_url="https://93.184.216.34/secret-path"))

    assert detail["event_id"] == "job-1.succeeded"
    assert (detail["status"], detail["owner"], detail["batch_id"]) == ("succeeded", "key-a", "batch-1")
    assert detail["result"]["width"] == 64 and detail["result"]["output"]["format"] == "png"
    assert "url" not in detail["result"] and "secret-path" not in repr(detail)


def test_a_batch_detail_counts_its_jobs():
    jobs = [ended_job(S.SUCCEEDED), ended_job(S.FAILED, error=ErrorDetail(ErrorCode.CORRUPT_IMAGE, "bad"))]
    batch = Batch(batch_id="batch-1", created_at=iso(NOW), job_ids=["job-1", "job-1"], expires_at=NOW + 60)

    detail = batch_detail(batch, jobs)

    assert detail["event_id"] == "batch-1.completed"
    assert {k: v for k, v in detail["counts"].items() if v} == {"succeeded": 1, "failed": 1}


def test_buckets_are_five_minutes_aligned_and_cover_the_window():
    assert bucket_of(NOW) == "2026-01-01T00:00Z"
    assert bucket_of(NOW + BUCKET_S - 1) == "2026-01-01T00:00Z"
    assert bucket_of(NOW + BUCKET_S) == "2026-01-01T00:05Z"
    hour = buckets_within(NOW + 60, HOUR_S)
    assert len(hour) == 12 and len(set(hour)) == 12
    assert hour[0] == "2026-01-01T00:00Z" and hour[-1] == "2025-12-31T23:05Z"
    assert len(buckets_within(NOW, DAY_S)) == 288


def test_an_end_counts_under_its_status_and_a_failure_under_its_code():
    assert end_counter(ended_job(S.SUCCEEDED)) == "succeeded"
    assert end_counter(ended_job(S.EXPIRED)) == "expired"
    failed = ended_job(S.FAILED, error=ErrorDetail(ErrorCode.TOO_MANY_PIXELS, "too big"))
    assert end_counter(failed) == "failed.too_many_pixels"
    assert end_counter(ended_job(S.FAILED)) == "failed.internal_error"


def test_a_summary_adds_up_buckets_and_ignores_their_keys():
    buckets = [
        {"bucket": "2026-01-01T00:00Z", "expires_at": 1, "created": 3, "succeeded": 2, "failed.corrupt_image": 1},
        {"bucket": "2026-01-01T00:05Z", "expires_at": 2, "created": 1, "failed.too_large": 2, "cancelled": 1},
    ]

    assert summary(buckets) == JobCounts(
        created=4, succeeded=2, cancelled=1, expired=0, failed=3, failed_by_code={"corrupt_image": 1, "too_large": 2}
    )
    assert summary([]) == JobCounts(created=0, succeeded=0, cancelled=0, expired=0, failed=0, failed_by_code={})


def test_a_signature_header_with_non_ascii_characters_does_not_verify():
    assert not signature_is_valid(SECRET, f"t={NOW},v1=é", BODY, NOW)
