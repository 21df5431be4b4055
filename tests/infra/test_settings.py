"""Deployment settings: every knob comes from context, in its JSON type or as a `-c` string, and a
deployment the functions would refuse fails at synth."""

import pytest

from cutout.models import DEFAULT_MODEL
from infra.settings import SERVICE_KEYS, SettingsError, StackSettings
from infra.wiring import FUNCTIONS
from tests.support.stack_synthesis import CDK_CONTEXT, app_for


def settings_with(**overrides) -> StackSettings:
    return StackSettings.from_context(app_for(overrides).node)


def test_cdk_json_holds_every_knob_and_nothing_unread():
    derived = ("sizes", "reserved_concurrency", "service")
    read = {name for name in StackSettings.__dataclass_fields__ if name not in derived}
    read |= set(SERVICE_KEYS)
    read |= {f"{w.name}_{part}" for w in FUNCTIONS for part in ("memory_mb", "timeout_s", "reserved_concurrency")}
    ours = {key for key in CDK_CONTEXT if not key.startswith("@")}
    assert ours == read


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
    assert settings.reserved_concurrency == {"api": None, "normalize": 3, "normalize_failures": None, "inference": 8}
    assert settings.service.max_upload_bytes == 1048576
    assert settings_with(allowed_origins='["https://c.example"]').allowed_origins == ["https://c.example"]


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
    ],
)
def test_settings_the_stack_or_the_functions_would_refuse_fail_at_synth(overrides, complaint):
    with pytest.raises(SettingsError, match=complaint):
        settings_with(**overrides)
