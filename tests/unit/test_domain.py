"""The job rules, key names and settings of the shared layer, and the repository's conditional writes."""

import re
import time
from dataclasses import replace
from urllib.parse import urlsplit

import boto3
import pytest

import cutout.aws
from cutout import jobs
from cutout.batches import BatchStatus, batch_status, status_counts
from cutout.clients import OWNER_ATTRIBUTE, OWNER_INDEX_SORT_KEY, caller_of, decode_cursor, encode_cursor, may_access
from cutout.errors import ErrorCode, ErrorDetail, JobRejected
from cutout.jobs import ALLOWED_TRANSITIONS, InvalidTransition, JobRequest, JobStatus, ResultFile
from cutout.keys import is_job_id, job_id_from_upload_key, new_job_id, prepared_key, result_key, upload_key
from cutout.limits import service_limits
from cutout.models import (
    DEFAULT_MODEL,
    MODELS,
    NETWORKS,
    QuantizedFrom,
    Stretch,
    chosen_model,
    model_catalogue,
    networks_of,
)
from cutout.output import OUTPUT_OPTIONS_SCHEMA, Color, CropMargin, OutputFormat, OutputOptions, SubjectBox
from cutout.settings import Settings

EVERY_OPTION = {"format": "webp", "bg_color": "#102030A0", "crop": True, "crop_margin": "5%", "max_side": 512}
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
    job = a_job(now, filename="a.png", output=OutputOptions(format=OutputFormat.MASK))

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


def test_the_addressing_style_and_the_models_are_settings_too():
    defaults = Settings.from_env({})
    chosen = Settings.from_env({"S3_ADDRESSING_STYLE": "path", "DEFAULT_MODEL": "u2net", "CUTOUT_MODEL_DIR": "models"})

    def read(settings):
        return settings.s3_addressing_style, settings.default_model, settings.cutout_model_dir

    assert read(defaults) == ("virtual", DEFAULT_MODEL, "/opt/models")
    assert read(chosen) == ("path", "u2net", "models")
    with pytest.raises(ValueError, match="DEFAULT_MODEL must be one of general, precise"):
        Settings.from_env({"DEFAULT_MODEL": "isnet-general-use"})


@pytest.mark.parametrize("style, bucket_in_path", [("virtual", False), ("path", True)])
def test_the_addressing_style_setting_reaches_the_bucket_client(aws, monkeypatch, style, bucket_in_path):
    monkeypatch.setenv("S3_ADDRESSING_STYLE", style)
    for service in (cutout.aws.settings, cutout.aws.object_store):
        service.cache_clear()

    url = cutout.aws.object_store().presign_upload("uploads/x", "image/png", 1, 60)

    assert urlsplit(url).path.startswith(f"/{aws.bucket_name}/") is bucket_in_path


def test_the_table_key_ttl_and_owner_index_are_job_fields():
    assert {jobs.PARTITION_KEY, jobs.TTL_ATTRIBUTE, OWNER_ATTRIBUTE, OWNER_INDEX_SORT_KEY} <= jobs.JOB_FIELDS


def test_the_limits_body_keeps_its_shape():
    limits = service_limits(Settings(max_upload_bytes=1000))
    assert limits == {
        "max_upload_bytes": 1000,
        "max_input_pixels": Settings().max_input_pixels,
        "max_input_side": Settings().max_input_side,
        "max_output_side": Settings().max_output_side,
        "upload_url_ttl_s": Settings().upload_url_ttl_s,
        "result_ttl_s": Settings().result_ttl_s,
        "max_batch_jobs": 100,
        "upload_types": [
            {"content_type": "image/jpeg", "signatures": [{"offset": 0, "hex": "ffd8ff"}]},
            {"content_type": "image/png", "signatures": [{"offset": 0, "hex": "89504e470d0a1a0a"}]},
            {
                "content_type": "image/webp",
                "signatures": [{"offset": 0, "hex": "52494646"}, {"offset": 8, "hex": "57454250"}],
            },
        ],
        "output_formats": ["png", "webp", "mask", "jpeg"],
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
        a_job(now, filename="a.png", output=OutputOptions.from_request(EVERY_OPTION)),
        status=JobStatus.SUCCEEDED,
        upload_etag="etag",
        handed_over_at=jobs.iso(now),
        width=640,
        height=480,
        prepared_content_type="image/jpeg",
        error=ErrorDetail(ErrorCode.TOO_MANY_PIXELS, "m", {"max_pixels": 5}),
        result=ResultFile(
            OutputFormat.WEBP, "image/webp", 640, 480, 1234, subject=SubjectBox(1, 2, 30, 40), model="u2net"
        ),
        result_expires_at=int(now) + 60,
    )
    aws.jobs.create(job)

    assert aws.jobs.get(job.job_id, now) == job
    item = aws_item(aws, job.job_id)
    assert item["output"] == EVERY_OPTION, "stored as the request spells them"


def aws_item(aws, job_id: str) -> dict:
    return boto3.resource("dynamodb").Table(aws.table_name).get_item(Key={jobs.PARTITION_KEY: job_id})["Item"]


def test_a_job_written_before_jobs_stored_their_options_still_reads(aws):
    """An item of the previous version, in flight during a deploy: only output_format, and a result
    without subject."""
    now = time.time()
    job = replace(
        a_job(now),
        status=JobStatus.SUCCEEDED,
        result=ResultFile(OutputFormat.MASK, "image/png", 1, 1, 1, subject=None, model="u2netp"),
        result_expires_at=int(now) + 60,
    )
    aws.jobs.create(job)
    table = boto3.resource("dynamodb").Table(aws.table_name)
    table.update_item(
        Key={jobs.PARTITION_KEY: job.job_id},
        UpdateExpression="SET output_format = :format REMOVE #output",
        ExpressionAttributeNames={"#output": "output"},
        ExpressionAttributeValues={":format": "mask"},
    )
    assert "subject" not in aws_item(aws, job.job_id)["result"]

    read = aws.jobs.get(job.job_id, now)

    assert read.output == OutputOptions(format=OutputFormat.MASK)
    assert read.output_format is OutputFormat.MASK
    assert read.result.subject is None


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


@pytest.mark.parametrize(
    "output, applied",
    [
        (None, {"format": "png", "bg_color": None, "crop": False, "crop_margin": None, "max_side": None}),
        ({}, {"format": "png", "bg_color": None, "crop": False, "crop_margin": None, "max_side": None}),
        ({"format": "jpeg"}, {"format": "jpeg", "bg_color": "#FFFFFF"}),
        ({"format": "jpeg", "bg_color": "#102030ff"}, {"format": "jpeg", "bg_color": "#102030"}),
        ({"format": "png", "bg_color": "#abcdef"}, {"bg_color": "#ABCDEF"}),
        ({"format": "webp", "bg_color": "#ABCDEF80"}, {"format": "webp", "bg_color": "#ABCDEF80"}),
        ({"bg_color": None, "crop_margin": None, "max_side": None}, {"bg_color": None, "max_side": None}),
        ({"crop": True}, {"crop": True, "crop_margin": None}),
        ({"crop": True, "crop_margin": "500px"}, {"crop": True, "crop_margin": "500px"}),
        ({"crop": True, "crop_margin": "50%"}, {"crop": True, "crop_margin": "50%"}),
        ({"crop": True, "crop_margin": "0px"}, {"crop_margin": "0px"}),
        ({"max_side": 16}, {"max_side": 16}),
        ({"max_side": 65535}, {"max_side": 65535}),
        ({"format": "mask", "crop": True, "max_side": 100}, {"format": "mask", "bg_color": None, "max_side": 100}),
    ],
)
def test_each_output_option_is_taken_and_echoed(output, applied):
    options = OutputOptions.from_request(output)

    echoed = options.to_json()
    assert echoed == {**echoed, **applied}
    assert set(echoed) == set(OUTPUT_OPTIONS_SCHEMA["properties"])
    assert OutputOptions.from_request(echoed) == options, "what is echoed reads back the same"


@pytest.mark.parametrize(
    "output, field",
    [
        ({"format": "gif"}, "output.format"),
        ({"format": None}, "output.format"),
        ({"bg_color": "red"}, "output.bg_color"),
        ({"bg_color": "#12345"}, "output.bg_color"),
        ({"bg_color": "#1234567"}, "output.bg_color"),
        ({"bg_color": "#GGGGGG"}, "output.bg_color"),
        ({"bg_color": 0xFFFFFF}, "output.bg_color"),
        ({"format": "jpeg", "bg_color": "#FFFFFF80"}, "output.bg_color"),
        ({"format": "mask", "bg_color": "#FFFFFF"}, "output.bg_color"),
        ({"crop": "yes"}, "output.crop"),
        ({"crop": 1}, "output.crop"),
        ({"crop_margin": "10px"}, "output.crop_margin"),
        ({"crop": False, "crop_margin": "10px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "501px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "51%"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "10"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "-1px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "\u0661\u0660px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": 10}, "output.crop_margin"),
        ({"max_side": 15}, "output.max_side"),
        ({"max_side": 65536}, "output.max_side"),
        ({"max_side": True}, "output.max_side"),
        ({"max_side": "20"}, "output.max_side"),
        ({"max_side": 20.0}, "output.max_side"),
        ({"background": "#FFFFFF"}, "output.background"),
    ],
)
def test_each_bad_output_option_is_refused_by_name(output, field):
    with pytest.raises(JobRejected) as refused:
        OutputOptions.from_request(output)

    assert refused.value.code is ErrorCode.BAD_REQUEST
    assert [problem["field"] for problem in refused.value.details["problems"]] == [field]


def test_every_bad_output_option_is_named_at_once():
    with pytest.raises(JobRejected) as refused:
        OutputOptions.from_request({"format": "gif", "max_side": 1, "crop_margin": "1px", "x": 1})

    assert {p["field"] for p in refused.value.details["problems"]} == {
        "output.format",
        "output.max_side",
        "output.crop_margin",
        "output.x",
    }


def test_the_options_schema_states_the_domains_rules():
    properties = OUTPUT_OPTIONS_SCHEMA["properties"]
    assert properties["format"]["enum"] == [f.value for f in OutputFormat]
    assert (properties["max_side"]["minimum"], properties["max_side"]["maximum"]) == (16, 65535)
    pattern = re.compile(properties["bg_color"]["pattern"])
    assert [bool(pattern.search(text)) for text in ("#A0b1C2", "#A0b1C2d3", "#A0b1C", "x#A0b1C2")] == [
        True,
        True,
        False,
        False,
    ]
    margin = re.compile(properties["crop_margin"]["pattern"])
    assert [bool(margin.search(text)) for text in ("20px", "5%", "20", "px", "12345px")] == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_colours_and_margins_read_and_print_back():
    assert Color.parse("#0a0B0cFF") == Color(10, 11, 12) and str(Color(10, 11, 12)) == "#0A0B0C"
    assert str(Color.parse("#0a0b0c01")) == "#0A0B0C01"
    assert CropMargin.parse("10%").pixels(200, 95) == 20
    assert CropMargin.parse("5%").pixels(10, 9) == 1  # half rounds up
    assert CropMargin.parse("7px").pixels(1000, 1000) == 7


def test_every_model_runs_known_networks_and_the_default_is_one_of_them():
    assert DEFAULT_MODEL in MODELS
    for model in MODELS.values():
        assert model.networks and set(model.networks) <= set(NETWORKS), model.name
        assert len({NETWORKS[name].input_size for name in model.networks}) == 1, "averaged masks share one size"


def test_a_quantized_network_is_provisioned_after_the_network_it_is_built_from():
    provisioned = [network.name for network in networks_of(list(MODELS))]
    assert len(provisioned) == len(set(provisioned))
    for position, name in enumerate(provisioned):
        source = NETWORKS[name].source
        if isinstance(source, QuantizedFrom):
            assert source.network in provisioned[:position]
    assert [network.name for network in networks_of(["precise"])] == ["u2netp", "u2net", "u2net_int8"]


def test_a_stretch_pins_its_ends_and_keeps_the_order_of_levels():
    table = Stretch(gain=4).table()
    assert len(table) == 256 and table == sorted(table)
    assert table[:96] == [0] * 96 and table[160:] == [255] * 96
    assert table[127] < 128 <= table[128], "the foreground threshold (level 128) stays where it was"
    moved = Stretch(gain=4, centre=0.45).table()
    assert moved[114] < 128 <= moved[115], "with the centre at 0.45, level 115 (0.451) becomes foreground"


def test_a_request_gets_the_model_it_names_or_the_default():
    assert chosen_model(None, "precise") == "precise"
    assert chosen_model("modnet", "precise") == "modnet"
    with pytest.raises(JobRejected) as refused:
        chosen_model("isnet-general-use", "general")
    assert refused.value.code == ErrorCode.BAD_REQUEST
    assert refused.value.details["models"] == list(MODELS)


def test_the_catalogue_marks_only_the_default_and_names_each_networks_licence():
    catalogue = model_catalogue("u2net")
    assert [(model["name"], model["default"]) for model in catalogue["models"]] == [
        (name, name == "u2net") for name in MODELS
    ]
    precise = next(model for model in catalogue["models"] if model["name"] == "precise")
    assert [network["name"] for network in precise["networks"]] == ["u2netp", "u2net_int8"]
    assert all("Apache-2.0" in network["licence"] for network in precise["networks"])


def test_a_cursor_holds_its_position_and_nothing_else_is_taken_for_one():
    position = {"job_id": "00000000-0000-4000-8000-000000000000", "created_at": "2026-12-03T10:00:00.000Z"}
    keys = frozenset(position)

    assert decode_cursor(encode_cursor(position), keys) == position
    for forged in [encode_cursor({**position, "owner": "someone"}), encode_cursor({"job_id": 1, "created_at": "x"}),
                   "%%%", "x" * 600, encode_cursor([1, 2])]:  # fmt: skip
        with pytest.raises(JobRejected) as refused:
            decode_cursor(forged, keys)
        assert refused.value.code is ErrorCode.BAD_REQUEST


def test_the_caller_is_the_key_and_only_the_owner_may_access():
    assert caller_of("none", None) is None and caller_of("none", "k") is None
    assert caller_of("api_key", "k") == "k"
    with pytest.raises(JobRejected) as refused:
        caller_of("api_key", None)
    assert refused.value.code is ErrorCode.FORBIDDEN
    assert may_access("k", "k") and may_access("k", None) and may_access(None, None)
    assert not may_access("k", "other") and not may_access(None, "k")


def test_a_batch_is_done_once_every_job_is_final():
    statuses = [JobStatus.SUCCEEDED, JobStatus.PROCESSING]

    assert batch_status(statuses) is BatchStatus.RUNNING
    assert batch_status([JobStatus.SUCCEEDED, JobStatus.EXPIRED]) is BatchStatus.DONE
    counts = status_counts(statuses)
    assert set(counts) == set(JobStatus) and (counts["succeeded"], counts["processing"], counts["queued"]) == (1, 1, 0)


def test_a_settings_api_auth_and_batch_limit_are_checked():
    with pytest.raises(ValueError, match="API_AUTH"):
        Settings.from_env({"API_AUTH": "open"})
    with pytest.raises(ValueError, match="MAX_BATCH_JOBS"):
        Settings.from_env({"MAX_BATCH_JOBS": "101"})
