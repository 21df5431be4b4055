"""The job rules, key names and settings of the shared layer, and the repository's conditional writes."""

import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

import cutout.aws
from cutout import jobs
from cutout.errors import ErrorCode, ErrorDetail, JobRejected
from cutout.jobs import ALLOWED_TRANSITIONS, InvalidTransition, JobRequest, JobStatus, OutputFormat, ResultFile
from cutout.keys import is_job_id, job_id_from_upload_key, new_job_id, prepared_key, result_key, upload_key
from cutout.limits import service_limits
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
    [
        "uploads/",
        "uploads/../results/x",
        "prepared/" + "1" * 36,
        "uploads/not-a-uuid",
        "uploads/" + new_job_id().upper(),
    ],
)
def test_keys_cutout_did_not_hand_out_have_no_job(key):
    assert job_id_from_upload_key(key) is None


def test_new_job_limits_and_expiry():
    now = 1_800_000_000
    job = a_job(now, filename="a.png", output_format=OutputFormat.MASK)

    assert job.status == "awaiting_upload"
    assert job.upload_expires_at == now + Settings().upload_url_ttl_s
    assert job.expires_at == now + Settings().job_retention_s
    assert job.stages == {"awaiting_upload": "2027-01-15T08:00:00.000Z"}


def test_new_job_rejects_what_it_cannot_take():
    with pytest.raises(JobRejected) as too_big:
        a_job(content_length=Settings().max_upload_bytes + 1)
    assert too_big.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    with pytest.raises(JobRejected) as wrong_type:
        a_job(content_type="image/gif")
    assert wrong_type.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE


def test_an_unused_upload_window_moves_the_job_to_expired_with_the_reason():
    job = a_job(now=1000)
    deadline = 1000 + Settings().upload_url_ttl_s

    assert jobs.overdue_move(job, Settings(), now=deadline) is None
    target, error = jobs.overdue_move(job, Settings(), now=deadline + 1)
    assert target is JobStatus.EXPIRED and error.code == "upload_not_received"


def test_download_filename_is_safe():
    job = a_job(filename='../../evil"\r\nX-Header: 1.jpg')
    assert jobs.download_filename(job) == "______evil___X-Header__1-cutout.png"
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


@pytest.mark.parametrize(
    "setting, origins",
    [
        ("*", ("*",)),
        ("", ("*",)),
        (" , ", ("*",)),
        (" https://a.example , https://b.example,", ("https://a.example", "https://b.example")),
    ],
)
def test_allowed_origins_setting(setting, origins):
    assert Settings.from_env({"ALLOWED_ORIGINS": setting}).allowed_origins == origins


def test_the_addressing_style_and_the_model_are_settings_too():
    defaults = Settings.from_env({})
    chosen = Settings.from_env({"S3_ADDRESSING_STYLE": "path", "CUTOUT_MODEL": "other", "CUTOUT_MODEL_DIR": "models"})

    def read(settings):
        return settings.s3_addressing_style, settings.cutout_model, settings.cutout_model_dir

    assert read(defaults) == ("virtual", "u2netp", "/opt/models")
    assert read(chosen) == ("path", "other", "models")


@pytest.mark.parametrize("style, bucket_in_path", [("virtual", False), ("path", True)])
def test_the_addressing_style_setting_reaches_the_bucket_client(aws, monkeypatch, style, bucket_in_path):
    monkeypatch.setenv("S3_ADDRESSING_STYLE", style)
    for service in (cutout.aws.settings, cutout.aws.object_store):
        service.cache_clear()

    url = cutout.aws.object_store().presign_upload("uploads/x", "image/png", 1, 60)

    assert urlsplit(url).path.startswith(f"/{aws.bucket_name}/") is bucket_in_path


def test_the_table_key_and_ttl_are_job_fields():
    assert {jobs.PARTITION_KEY, jobs.TTL_ATTRIBUTE} <= jobs.JOB_FIELDS


def test_the_limits_body_keeps_its_shape():
    limits = service_limits(Settings(max_upload_bytes=1000))
    assert limits == {
        "max_upload_bytes": 1000,
        "max_input_pixels": Settings().max_input_pixels,
        "max_input_side": Settings().max_input_side,
        "max_output_side": Settings().max_output_side,
        "upload_url_ttl_s": Settings().upload_url_ttl_s,
        "result_ttl_s": Settings().result_ttl_s,
        "upload_types": [
            {"content_type": "image/jpeg", "signatures": [{"offset": 0, "hex": "ffd8ff"}]},
            {"content_type": "image/png", "signatures": [{"offset": 0, "hex": "89504e470d0a1a0a"}]},
            {
                "content_type": "image/webp",
                "signatures": [{"offset": 0, "hex": "52494646"}, {"offset": 8, "hex": "57454250"}],
            },
        ],
        "output_formats": ["png", "webp", "mask"],
        "terminal_statuses": ["cancelled", "expired", "failed", "succeeded"],
        "cancellable_statuses": ["awaiting_upload", "queued"],
    }


@pytest.mark.parametrize(
    "status, etag, handed_over_at, resumes",
    [
        (JobStatus.QUEUED, "e", None, True),
        (JobStatus.QUEUED, None, None, True),  # queued before jobs recorded their upload
        (JobStatus.QUEUED, "e", jobs.iso(0), False),
        (JobStatus.QUEUED, "other", None, False),
        (JobStatus.NORMALIZING, "e", None, False),
        (JobStatus.PROCESSING, "e", None, False),
    ],
)
def test_only_a_queued_jobs_own_upload_resumes_a_lost_hand_over(status, etag, handed_over_at, resumes):
    job = replace(a_job(), status=status, upload_etag=etag, handed_over_at=handed_over_at)
    assert jobs.resumes_hand_over(job, "e") is resumes


def test_the_last_attempt_is_the_queues_last_delivery():
    settings = Settings(max_receive_count=3)
    assert [jobs.is_last_attempt(count, settings) for count in (1, 2, 3, 4)] == [False, False, True, True]


def test_a_job_reads_back_as_it_was_written(aws):
    now = time.time()
    job = replace(
        a_job(now, filename="a.png", output_format=OutputFormat.WEBP),
        status=JobStatus.SUCCEEDED,
        upload_etag="etag",
        handed_over_at=jobs.iso(now),
        width=640,
        height=480,
        prepared_content_type="image/jpeg",
        error=ErrorDetail(ErrorCode.TOO_MANY_PIXELS, "m", {"max_pixels": 5}),
        result=ResultFile(OutputFormat.WEBP, "image/webp", width=640, height=480, bytes=1234),
        result_expires_at=int(now) + 60,
    )
    aws.jobs.create(job)

    assert aws.jobs.get(job.job_id, now) == job


def test_repository_writes_only_job_fields(aws):
    job = a_job()
    aws.jobs.create(job)

    with pytest.raises(TypeError, match="no colour"):
        aws.jobs.transition(job.job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, time.time(), colour="red")


def test_a_job_takes_one_upload_and_is_given_up_on_only_before_its_hand_over(aws):
    job, now = a_job(), time.time()
    aws.jobs.create(job)
    taking = (JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING), JobStatus.NORMALIZING

    assert aws.jobs.transition(job.job_id, *taking, now, upload_etag="first").upload_etag == "first"
    assert aws.jobs.transition(job.job_id, *taking, now, upload_etag="second") is None
    aws.jobs.transition(job.job_id, JobStatus.NORMALIZING, JobStatus.QUEUED, now)
    assert aws.jobs.mark_handed_over(job.job_id, now) is True
    assert aws.jobs.mark_handed_over(job.job_id, now) is False
    assert aws.jobs.transition(job.job_id, JobStatus.QUEUED, JobStatus.FAILED, now, before_hand_over=True) is None
    assert aws.jobs.get(job.job_id, now).status == JobStatus.QUEUED


def test_repository_transition_is_conditional_on_the_previous_state(aws):
    job = a_job()
    aws.jobs.create(job)
    now = time.time()

    moved = aws.jobs.transition(job.job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, now, width=5)
    duplicate = aws.jobs.transition(job.job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, now)

    assert moved.status == "normalizing" and moved.width == 5 and "normalizing" in moved.stages
    assert duplicate is None
    assert aws.jobs.get(job.job_id, now).status == "normalizing"


def test_repository_refuses_a_transition_the_rules_forbid(aws):
    job = a_job()
    aws.jobs.create(job)

    with pytest.raises(InvalidTransition):
        aws.jobs.transition(job.job_id, JobStatus.SUCCEEDED, JobStatus.PROCESSING, time.time())


WORKING = {JobStatus.NORMALIZING, JobStatus.QUEUED, JobStatus.PROCESSING}


def test_repository_fails_a_job_from_any_working_state(aws):
    job = a_job()
    aws.jobs.create(job)
    now = time.time()
    aws.jobs.transition(job.job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, now)

    failed = aws.jobs.transition(
        job.job_id, WORKING, JobStatus.FAILED, now, error=ErrorDetail(ErrorCode.CORRUPT_IMAGE, "m")
    )
    again = aws.jobs.transition(job.job_id, WORKING, JobStatus.FAILED, now)

    assert failed.status == "failed" and failed.error.code == "corrupt_image"
    assert again is None


def test_repository_does_not_touch_expired_items(aws):
    job = a_job(now=time.time() - 10 * 86400)
    aws.jobs.create(job)

    assert aws.jobs.get(job.job_id, time.time()) is None
    assert aws.jobs.transition(job.job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, time.time()) is None


def test_create_never_overwrites_a_job(aws):
    job = a_job()
    aws.jobs.create(job)

    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        aws.jobs.create(job)


@pytest.mark.parametrize(
    "status, limit",
    [("normalizing", "stall_timeout_s"), ("processing", "stall_timeout_s"), ("queued", "queued_timeout_s")],
)
def test_a_working_state_fails_stalled_only_after_its_limit(status, limit):
    settings = Settings()
    job = replace(a_job(now=0), status=JobStatus(status), updated_at=jobs.iso(1000))

    assert jobs.overdue_move(job, settings, now=1000 + getattr(settings, limit)) is None
    target, error = jobs.overdue_move(job, settings, now=1001 + getattr(settings, limit))
    assert target is JobStatus.FAILED and error.code == "stalled"


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "expired"])
def test_a_finished_job_is_never_overdue(status):
    job = replace(a_job(now=0), status=JobStatus(status), updated_at=jobs.iso(0))

    assert jobs.overdue_move(job, Settings(), now=10**9) is None
