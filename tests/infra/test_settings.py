"""Deployment settings: every knob comes from context, in its JSON type or as a `-c` string, and a
deployment the functions would refuse fails at synth."""

import pytest

from cutout.models import DEFAULT_MODEL
from infra.settings import SERVICE_KEYS, SettingsError, StackSettings, UsagePlan
from infra.wiring import FUNCTIONS
from tests.support.stack_synthesis import CDK_CONTEXT, app_for


def settings_with(**overrides) -> StackSettings:
    return StackSettings.from_context(app_for(overrides).node)


def test_cdk_json_holds_every_knob_and_nothing_unread():
    derived = ("sizes", "reserved_concurrency", "usage_plans", "service")
    read = {name for name in StackSettings.__dataclass_fields__ if name not in derived}
    read |= set(SERVICE_KEYS)
    read |= {f"{w.name}_{part}" for w in FUNCTIONS for part in ("memory_mb", "timeout_s", "reserved_concurrency")}
    ours = {key for key in CDK_CONTEXT if not key.startswith("@")}
    assert ours == read | {"usage_plans"}


def test_a_missing_knob_is_named():
    app = app_for()
    app.node.set_context("inference_memory_mb", None)
    with pytest.raises(SettingsError, match="inference_memory_mb"):
        StackSettings.from_context(app.node)


def test_command_line_strings_are_read_in_the_knobs_type():
    settings = settings_with(
        inference_memory_mb="4096",
        tracing="false",
        allowed_origins="https://a.example, https://b.example",
        inference_reserved_concurrency="8",
        normalize_reserved_concurrency="3",
        max_upload_bytes="1048576",
    )
    assert settings.sizes["inference"].memory_mb == 4096
    assert settings.tracing is False
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.reserved_concurrency == {
        "api": None,
        "normalize": 3,
        "normalize_failures": None,
        "inference": 8,
        "notify": None,
        "deliver": None,
        "deadlines": None,
    }
    assert settings.service.max_upload_bytes == 1048576
    assert settings_with(allowed_origins='["https://c.example"]').allowed_origins == ["https://c.example"]


def test_usage_plans_are_read_in_order_from_cdk_json_or_the_command_line():
    assert settings_with().usage_plans == {
        "free": UsagePlan(rate=2, burst=5, daily_quota=500),
        "standard": UsagePlan(rate=20, burst=40, daily_quota=20000),
        "admin": UsagePlan(rate=5, burst=10, daily_quota=5000, admin=True),
    }
    plans = '{"trial": {"rate": 1, "burst": 1, "daily_quota": 10}, "big": {"rate": 50, "burst": 100, "daily_quota": 9}}'
    assert list(settings_with(usage_plans=plans).usage_plans) == ["trial", "big"]


def test_the_admin_plans_are_those_marked_admin_in_order():
    assert settings_with().admin_usage_plans == ["admin"]
    plans = (
        '{"ops": {"rate": 1, "burst": 1, "daily_quota": 1, "admin": true},'
        ' "free": {"rate": 1, "burst": 1, "daily_quota": 1, "admin": false},'
        ' "root": {"rate": 1, "burst": 1, "daily_quota": 1, "admin": true},'
        ' "trial": {"rate": 1, "burst": 1, "daily_quota": 1}}'
    )
    settings = settings_with(usage_plans=plans)
    assert settings.admin_usage_plans == ["ops", "root"]
    assert settings.usage_plans["trial"].admin is False


def test_api_auth_and_max_batch_jobs_are_service_settings():
    assert {"api_auth", "max_batch_jobs"} <= set(SERVICE_KEYS)
    settings = settings_with(api_auth="none", max_batch_jobs="7")
    assert (settings.service.api_auth, settings.service.max_batch_jobs) == ("none", 7)
    assert settings_with().service.api_auth == "api_key"


def test_the_defaults_are_valid_and_reserve_no_concurrency():
    settings = settings_with()
    assert settings.inference_packaging == "image"
    assert set(settings.reserved_concurrency.values()) == {None}
    assert settings.queue_visibility_timeout_s == 6 * settings.sizes["inference"].timeout_s
    assert settings.service.default_model == DEFAULT_MODEL


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"inference_packaging": "wheel"}, "inference_packaging"),
        ({"removal_policy": "retain"}, "auto_delete_objects"),
        ({"s3_addressing_style": "dns"}, "s3_addressing_style"),
        ({"api_timeout_s": "30"}, "api_timeout_s"),
        ({"normalize_memory_mb": "64"}, "normalize_memory_mb"),
        ({"inference_timeout_s": "901"}, "inference_timeout_s"),
        ({"inference_max_concurrency": "1"}, "inference_max_concurrency"),
        ({"inference_reserved_concurrency": "2"}, "inference_reserved_concurrency"),
        ({"api_reserved_concurrency": "0"}, "api_reserved_concurrency"),
        ({"normalize_reserved_concurrency": "-1"}, "normalize_reserved_concurrency"),
        ({"normalize_reserved_concurrency": "some"}, "normalize_reserved_concurrency"),
        ({"inference_batch_size": "11"}, "inference_batch_size"),
        ({"create_job_throttle_rate": "51"}, "POST /v1/jobs"),
        ({"inference_timeout_s": "300"}, "stall_timeout_s"),
        ({"log_retention": "FORTNIGHT"}, "log_retention"),
        ({"log_level": "LOUD"}, "log_level"),
        ({"tracing": "yes"}, "tracing"),
        ({"inference_memory_mb": "lots"}, "inference_memory_mb"),
        # The functions' own rule, applied at synth.
        ({"result_url_ttl_s": "7200"}, "RESULT_URL_TTL_S"),
        ({"default_model": "isnet-general-use"}, "DEFAULT_MODEL must be one of general, precise"),
        ({"api_auth": "iam"}, "API_AUTH must be one of api_key, none"),
        ({"max_batch_jobs": "101"}, "MAX_BATCH_JOBS"),
        ({"max_batch_jobs": "0"}, "MAX_BATCH_JOBS"),
        # Usage plans: at least one, each with positive whole limits, a burst that holds its rate,
        # and none above what the stage lets through anyway.
        ({"usage_plans": "{}"}, "usage_plans' must name at least one plan"),
        ({"usage_plans": "[1]"}, "usage_plans' must name at least one plan"),
        ({"usage_plans": "free"}, "usage_plans': expected a JSON object"),
        ({"usage_plans": '{"a/b": {"rate": 1, "burst": 1, "daily_quota": 1}}'}, "no plan name"),
        (
            {"usage_plans": '{"free": {"rate": 1, "burst": 1}}'},
            r"^usage_plans.free must have rate, burst, daily_quota, and may have admin$",
        ),
        ({"usage_plans": '{"free": {"rate": 1, "burst": 1, "daily_quota": 1, "x": 1}}'}, "may have admin$"),
        ({"usage_plans": '{"free": {"rate": 1, "burst": 1, "admin": true}}'}, "must have rate, burst, daily_quota"),
        # Only JSON's true or false: "yes" or 1 would read as an admin plan to a careless reader.
        (
            {"usage_plans": '{"free": {"rate": 1, "burst": 1, "daily_quota": 1, "admin": "yes"}}'},
            r"^usage_plans.free.admin must be true or false$",
        ),
        ({"usage_plans": '{"free": {"rate": 1, "burst": 1, "daily_quota": 1, "admin": 1}}'}, "admin must be true"),
        ({"usage_plans": '{"free": {"rate": 0, "burst": 1, "daily_quota": 1}}'}, r"usage_plans.free.rate must be"),
        ({"usage_plans": '{"free": {"rate": 1, "burst": 1, "daily_quota": -5}}'}, "daily_quota must be a positive"),
        ({"usage_plans": '{"free": {"rate": 1.5, "burst": 2, "daily_quota": 1}}'}, "rate must be a positive integer"),
        ({"usage_plans": '{"free": {"rate": true, "burst": 2, "daily_quota": 1}}'}, "rate must be a positive integer"),
        ({"usage_plans": '{"free": {"rate": 5, "burst": 4, "daily_quota": 1}}'}, "burst must be at least rate"),
        ({"usage_plans": '{"free": {"rate": 51, "burst": 60, "daily_quota": 1}}'}, "no higher than the stage throttle"),
        ({"usage_plans": '{"free": {"rate": 5, "burst": 101, "daily_quota": 1}}'}, "no higher than the stage throttle"),
        ({"api_throttle_rate": "10"}, "usage_plans.standard: rate and burst"),
    ],
)
def test_settings_the_stack_or_the_functions_would_refuse_fail_at_synth(overrides, complaint):
    with pytest.raises(SettingsError, match=complaint):
        settings_with(**overrides)
