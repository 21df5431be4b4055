"""The job rules, key names and settings of the shared layer, and the repository's conditional writes."""

import time

import pytest

from cutout import jobs
from cutout.errors import ErrorCode, JobRejected
from cutout.jobs import ALLOWED_TRANSITIONS, InvalidTransition, JobRequest, JobStatus, OutputFormat
from cutout.keys import is_job_id, job_id_from_upload_key, new_job_id, prepared_key, result_key, upload_key
from cutout.settings import Settings

PIPELINE = [
    JobStatus.AWAITING_UPLOAD,
    JobStatus.NORMALIZING,
    JobStatus.QUEUED,
    JobStatus.PROCESSING,
    JobStatus.SUCCEEDED,
]


def a_job(now=None, **request):
    request = {"content_type": "image/png", "content_length": 1000, **request}
    return jobs.new_job(new_job_id(), JobRequest(**request), Settings(), time.time() if now is None else now)


@pytest.mark.parametrize("current", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_only_listed_transitions_are_allowed(current, target):
    if target in ALLOWED_TRANSITIONS[current]:
        jobs.check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            jobs.check_transition(current, target)


def test_the_pipeline_never_goes_back():
    for earlier_index, earlier in enumerate(PIPELINE):
        for later in PIPELINE[earlier_index + 1 :]:
            assert earlier not in ALLOWED_TRANSITIONS[later]


def test_terminal_and_cancellable_states():
    terminal = {status for status, targets in ALLOWED_TRANSITIONS.items() if not targets}
    assert terminal == {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}
    assert jobs.CANCELLABLE_STATUSES == {JobStatus.AWAITING_UPLOAD, JobStatus.QUEUED}


def test_keys_derive_from_the_job_id_only():
    job_id = new_job_id()
    assert is_job_id(job_id)
    assert upload_key(job_id) == f"uploads/{job_id}"
    assert prepared_key(job_id) == f"prepared/{job_id}"
    assert result_key(job_id, "webp") == f"results/{job_id}.webp"
    assert job_id_from_upload_key(upload_key(job_id)) == job_id


@pytest.mark.parametrize(
    "key",
    ["uploads/", "uploads/../results/x", "prepared/" + "1" * 36, "uploads/not-a-uuid", "uploads/" + new_job_id().upper()],
)
def test_keys_cutout_did_not_hand_out_have_no_job(key):
    assert job_id_from_upload_key(key) is None


def test_new_job_limits_and_expiry():
    now = 1_800_000_000
    item = a_job(now, filename="a.png", output_format=OutputFormat.MASK)

    assert item["status"] == "awaiting_upload"
    assert item["upload_expires_at"] == now + Settings().upload_url_ttl_s
    assert item["expires_at"] == now + Settings().job_retention_s
    assert item["stages"] == {"awaiting_upload": "2027-01-15T08:00:00.000Z"}


def test_new_job_rejects_what_it_cannot_take():
    with pytest.raises(JobRejected) as too_big:
        a_job(content_length=Settings().max_upload_bytes + 1)
    assert too_big.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    with pytest.raises(JobRejected) as wrong_type:
        a_job(content_type="image/gif")
    assert wrong_type.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE


def test_an_unused_upload_window_moves_the_job_to_expired_with_the_reason():
    item = a_job(now=1000)
    deadline = 1000 + Settings().upload_url_ttl_s

    assert jobs.overdue_move(item, Settings(), now=deadline) is None
    target, error = jobs.overdue_move(item, Settings(), now=deadline + 1)
    assert target is JobStatus.EXPIRED and error["code"] == "upload_not_received"


def test_download_filename_is_safe():
    item = a_job(filename='../../evil"\r\nX-Header: 1.jpg')
    assert jobs.download_filename(item) == "______evil___X-Header__1-cutout.png"
    assert jobs.download_filename(a_job()) == "image-cutout.png"


def test_settings_from_environment_and_their_checks():
    settings = Settings.from_env({"MAX_UPLOAD_BYTES": "1000", "TABLE_NAME": "t", "RESULT_TTL_S": ""})
    assert (settings.max_upload_bytes, settings.table_name, settings.result_ttl_s) == (1000, "t", 3600)
    with pytest.raises(ValueError):
        Settings.from_env({"MAX_OUTPUT_SIDE": "0"})
    with pytest.raises(ValueError):
        Settings.from_env({"RESULT_TTL_S": "60", "RESULT_URL_TTL_S": "120"})
    with pytest.raises(ValueError):
        Settings.from_env({"STALL_TIMEOUT_S": "0"})


def test_repository_transition_is_conditional_on_the_previous_state(aws):
    item = a_job()
    aws.jobs.create(item)
    now = time.time()

    moved = aws.jobs.transition(item["job_id"], JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, now, width=5)
    duplicate = aws.jobs.transition(item["job_id"], JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, now)

    assert moved["status"] == "normalizing" and moved["width"] == 5 and "normalizing" in moved["stages"]
    assert duplicate is None
    assert aws.jobs.get(item["job_id"], now)["status"] == "normalizing"


def test_repository_refuses_a_transition_the_rules_forbid(aws):
    item = a_job()
    aws.jobs.create(item)

    with pytest.raises(InvalidTransition):
        aws.jobs.transition(item["job_id"], JobStatus.SUCCEEDED, JobStatus.PROCESSING, time.time())


WORKING = {JobStatus.NORMALIZING, JobStatus.QUEUED, JobStatus.PROCESSING}


def test_repository_fails_a_job_from_any_working_state(aws):
    item = a_job()
    aws.jobs.create(item)
    now = time.time()
    aws.jobs.transition(item["job_id"], JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, now)

    failed = aws.jobs.transition(
        item["job_id"], WORKING, JobStatus.FAILED, now, error={"code": "corrupt_image", "message": "m"}
    )
    again = aws.jobs.transition(item["job_id"], WORKING, JobStatus.FAILED, now)

    assert failed["status"] == "failed" and failed["error"]["code"] == "corrupt_image"
    assert again is None


def test_repository_does_not_touch_expired_items(aws):
    item = a_job(now=time.time() - 10 * 86400)
    aws.jobs.create(item)

    assert aws.jobs.get(item["job_id"], time.time()) is None
    assert aws.jobs.transition(item["job_id"], JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, time.time()) is None


def test_create_never_overwrites_a_job(aws):
    item = a_job()
    aws.jobs.create(item)

    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        aws.jobs.create(item)


@pytest.mark.parametrize(
    "status, limit",
    [("normalizing", "stall_timeout_s"), ("processing", "stall_timeout_s"), ("queued", "queued_timeout_s")],
)
def test_a_working_state_fails_stalled_only_after_its_limit(status, limit):
    settings = Settings()
    item = {**a_job(now=0), "status": status, "updated_at": jobs.iso(1000)}

    assert jobs.overdue_move(item, settings, now=1000 + getattr(settings, limit)) is None
    target, error = jobs.overdue_move(item, settings, now=1001 + getattr(settings, limit))
    assert target is JobStatus.FAILED and error["code"] == "stalled"


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "expired"])
def test_a_finished_job_is_never_overdue(status):
    item = {**a_job(now=0), "status": status, "updated_at": jobs.iso(0)}

    assert jobs.overdue_move(item, Settings(), now=10**9) is None
