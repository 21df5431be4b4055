"""Every deployment knob, read once from CDK context: cdk.json holds them all, `-c key=value` overrides.

The service limits and TTLs are the functions' own ``cutout.settings.Settings`` fields under the
same names, checked by the same rules the functions apply at start-up, so a deployment that the
functions would refuse fails at synth instead.
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import get_args, get_origin

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Node

from cutout.settings import Settings
from infra.wiring import FUNCTIONS

DAY_S = 86400
# Lambda: memory 128–10,240 MB, duration up to 15 min; API Gateway cuts integrations at 29 s.
MEMORY_RANGE_MB = (128, 10240)
MAX_TIMEOUT_S = 900
MAX_API_TIMEOUT_S = 29
MAX_CONCURRENCY_RANGE = (2, 1000)


@dataclass(frozen=True)
class Architecture:
    """What an `architecture` setting means to each thing built for it."""

    lambda_architecture: lambda_.Architecture
    image_platform: ecr_assets.Platform
    wheel_machine: str  # the machine in manylinux wheels' platform tags


# Lambda's instruction sets, by the names its API (and the template's Architectures) uses.
ARCHITECTURES = {
    "x86_64": Architecture(lambda_.Architecture.X86_64, ecr_assets.Platform.LINUX_AMD64, "x86_64"),
    "arm64": Architecture(lambda_.Architecture.ARM_64, ecr_assets.Platform.LINUX_ARM64, "aarch64"),
}
# The SQS event source's visibility timeout must cover retries of a whole batch (AWS guidance).
VISIBILITY_TIMEOUT_FACTOR = 6
# The limits and TTLs, Settings' integers, the default model, whether callers need API keys and
# whether callback URLs may be private. The
# others the stack sets from the resources it creates or from knobs of its own, or the inference
# package does (its model folder).
SERVICE_FIELDS = {
    f.name: f.type
    for f in fields(Settings)
    if f.type is int or f.name in ("default_model", "api_auth", "webhook_allow_private")
}
SERVICE_KEYS = tuple(SERVICE_FIELDS)


# A usage plan's name is what `cutout keys create --plan` and the API Gateway console show.
PLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PLAN_FIELDS = ("rate", "burst", "daily_quota")
# A plan may also say "admin": true: its keys may read GET /v1/stats.
OPTIONAL_PLAN_FIELDS = ("admin",)
# Only a plausibility check: SNS sends a confirmation, and the address owner must accept it.
EMAIL_ADDRESS = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;.]+")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class UsagePlan:
    """What one API key of the plan may do: requests per second, burst, and requests per day."""

    rate: int
    burst: int
    daily_quota: int
    admin: bool = False


@dataclass(frozen=True)
class FunctionSize:
    memory_mb: int
    timeout_s: int


@dataclass(frozen=True)
class StackSettings:
    stack_name: str
    # "image": inference as a container image (AWS). "zip": the same handler as a zip function
    # with the shared layer, for targets without container images or a registry (LocalStack).
    inference_packaging: str
    # Bundle third-party packages into the layer and zips (pip, from PyPI or the local cache).
    # Off only where the functions run with a prepared environment anyway (LocalStack here).
    bundle_dependencies: bool
    # Every function's instruction set: "x86_64", or "arm64" (Graviton). The layer's and zips'
    # wheels and the inference image are built for it.
    architecture: str
    allowed_origins: list[str]  # browser origins for the API and for direct uploads to S3
    removal_policy: str  # "destroy" or "retain" for the bucket, the tables and the webhook secret
    auto_delete_objects: bool  # empty the bucket on destroy (a Node.js custom resource)
    point_in_time_recovery: bool
    s3_addressing_style: str  # "virtual" on AWS; "path" where bucket host names do not resolve
    api_throttle_rate: int  # requests per second for the whole API stage
    api_throttle_burst: int
    create_job_throttle_rate: int  # POST /v1/jobs: each creates a job and a presigned upload
    create_job_throttle_burst: int
    inference_max_concurrency: int  # the SQS event source's cap on parallel inference
    inference_batch_size: int
    queue_age_alarm_s: int  # alarm when the oldest queued job waited longer than this
    alarm_email: str | None  # subscribed to the alarm topic; None: no subscription
    log_level: str
    log_retention: str  # a logs.RetentionDays name, e.g. TWO_WEEKS
    tracing: bool  # X-Ray active tracing (Powertools tracer)
    metrics_namespace: str
    sizes: Mapping[str, FunctionSize]  # from <function>_memory_mb and <function>_timeout_s
    # From <function>_reserved_concurrency; None: draw from the account's unreserved pool.
    reserved_concurrency: Mapping[str, int | None]
    # The API key plans, in cdk.json's order (`make up` gives its key the first), by plan name.
    usage_plans: Mapping[str, UsagePlan]
    service: Settings  # limits, TTLs, the default model and api_auth, from context keys named as the Settings fields

    @property
    def results_lifecycle_days(self) -> int:
        """S3 expires whole days only: the lifecycle is a backstop behind the API's own result TTL."""
        return max(1, math.ceil(self.service.result_ttl_s / DAY_S))

    @property
    def cdk_removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.DESTROY if self.removal_policy == "destroy" else RemovalPolicy.RETAIN

    @property
    def admin_usage_plans(self) -> list[str]:
        """The plans whose keys may read GET /v1/stats."""
        return [name for name, plan in self.usage_plans.items() if plan.admin]

    @property
    def queue_visibility_timeout_s(self) -> int:
        return VISIBILITY_TIMEOUT_FACTOR * self.sizes["inference"].timeout_s

    @classmethod
    def from_context(cls, node: Node) -> "StackSettings":
        def read(key: str, kind: type):
            raw = node.try_get_context(key)
            optional = type(None) in get_args(kind)
            if raw is None:
                if optional:
                    return None
                raise SettingsError(f"context key {key!r} is missing (cdk.json lists every key)")
            try:
                return _coerce(raw, next(t for t in get_args(kind) if t is not type(None)) if optional else kind)
            except (TypeError, ValueError) as error:
                raise SettingsError(f"context key {key!r}: {error}") from None

        derived = {"sizes", "reserved_concurrency", "usage_plans", "service"}
        values = {f.name: read(f.name, f.type) for f in fields(cls) if f.name not in derived}
        values["sizes"] = {
            fn.name: FunctionSize(read(f"{fn.name}_memory_mb", int), read(f"{fn.name}_timeout_s", int))
            for fn in FUNCTIONS
        }
        values["reserved_concurrency"] = {
            fn.name: read(f"{fn.name}_reserved_concurrency", int | None) for fn in FUNCTIONS
        }
        values["usage_plans"] = read_usage_plans(node.try_get_context("usage_plans"))
        try:
            service = {key.upper(): str(read(key, kind)) for key, kind in SERVICE_FIELDS.items()}
            values["service"] = Settings.from_env(service)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        def require(condition: bool, message: str) -> None:
            if not condition:
                raise SettingsError(message)

        require(self.inference_packaging in ("image", "zip"), "inference_packaging must be image or zip")
        require(self.architecture in ARCHITECTURES, f"architecture must be {' or '.join(ARCHITECTURES)}")
        require(self.removal_policy in ("destroy", "retain"), "removal_policy must be destroy or retain")
        require(
            not self.auto_delete_objects or self.removal_policy == "destroy",
            "auto_delete_objects needs removal_policy destroy",
        )
        require(self.s3_addressing_style in ("virtual", "path"), "s3_addressing_style must be virtual or path")
        require(bool(self.allowed_origins), "allowed_origins must list at least one origin")
        for name, size in self.sizes.items():
            require(
                MEMORY_RANGE_MB[0] <= size.memory_mb <= MEMORY_RANGE_MB[1],
                f"{name}_memory_mb must be within {MEMORY_RANGE_MB}",
            )
            require(1 <= size.timeout_s <= MAX_TIMEOUT_S, f"{name}_timeout_s must be 1–{MAX_TIMEOUT_S}")
        require(self.sizes["api"].timeout_s <= MAX_API_TIMEOUT_S, f"api_timeout_s must be ≤ {MAX_API_TIMEOUT_S}")
        low, high = MAX_CONCURRENCY_RANGE
        require(low <= self.inference_max_concurrency <= high, f"inference_max_concurrency must be {low}–{high}")
        for name, reserved in self.reserved_concurrency.items():
            # 0 would stop the function altogether: not a limit.
            require(reserved is None or reserved >= 1, f"{name}_reserved_concurrency must be at least 1 (or null)")
        inference_reserved = self.reserved_concurrency["inference"]
        require(
            inference_reserved is None or inference_reserved >= self.inference_max_concurrency,
            "inference_reserved_concurrency below inference_max_concurrency throttles the event source",
        )
        require(1 <= self.inference_batch_size <= 10, "inference_batch_size must be 1–10")
        require(
            0 < self.create_job_throttle_rate <= self.api_throttle_rate
            and 0 < self.create_job_throttle_burst <= self.api_throttle_burst,
            "the POST /v1/jobs throttle must be positive and no higher than the stage throttle",
        )
        for name, plan in self.usage_plans.items():
            require(
                plan.rate <= self.api_throttle_rate and plan.burst <= self.api_throttle_burst,
                f"usage_plans.{name}: rate and burst must be no higher than the stage throttle"
                f" (api_throttle_rate {self.api_throttle_rate}, api_throttle_burst {self.api_throttle_burst})",
            )
        require(
            self.service.stall_timeout_s > self.queue_visibility_timeout_s + self.sizes["inference"].timeout_s,
            "stall_timeout_s must outlast one retry of inference (visibility timeout + timeout)",
        )
        require(
            2 * self.service.webhook_timeout_s < self.sizes["deliver"].timeout_s,
            "deliver_timeout_s must exceed twice webhook_timeout_s (connecting, then waiting for the answer)",
        )
        require(self.queue_age_alarm_s > 0, "queue_age_alarm_s must be positive")
        require(
            self.alarm_email is None or EMAIL_ADDRESS.fullmatch(self.alarm_email) is not None,
            f"alarm_email must be one email address (or null), not {self.alarm_email!r}",
        )
        require(self.log_level in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level must be DEBUG|INFO|WARNING|ERROR")
        require(self.log_retention in logs.RetentionDays.__members__, "log_retention must name a logs.RetentionDays")


def read_usage_plans(raw) -> dict[str, UsagePlan]:
    """cdk.json's "usage_plans" object (or `-c usage_plans='{...}'`): plan name -> its limits, in order."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SettingsError("context key 'usage_plans': expected a JSON object") from None
    if not isinstance(raw, dict) or not raw:
        raise SettingsError("context key 'usage_plans' must name at least one plan: {name: {rate, burst, daily_quota}}")
    plans = {}
    for name, limits in raw.items():
        if not PLAN_NAME.fullmatch(name):
            raise SettingsError(f"usage_plans: {name!r} is no plan name (letters, digits, _ . -; at most 64)")
        if not isinstance(limits, dict) or not set(PLAN_FIELDS) <= set(limits) <= {*PLAN_FIELDS, *OPTIONAL_PLAN_FIELDS}:
            raise SettingsError(
                f"usage_plans.{name} must have {', '.join(PLAN_FIELDS)}, and may have {', '.join(OPTIONAL_PLAN_FIELDS)}"
            )
        if not isinstance(limits.get("admin", False), bool):
            raise SettingsError(f"usage_plans.{name}.admin must be true or false")
        for key in PLAN_FIELDS:
            value = limits[key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise SettingsError(f"usage_plans.{name}.{key} must be a positive integer")
        plan = UsagePlan(**limits)
        if plan.burst < plan.rate:
            raise SettingsError(f"usage_plans.{name}: burst must be at least rate")
        plans[name] = plan
    return plans


def _coerce(raw, kind: type):
    """Context from cdk.json keeps its JSON type; `-c key=value` always arrives as a string."""
    if get_origin(kind) is list:
        if isinstance(raw, str):
            raw = json.loads(raw) if raw.startswith("[") else [part.strip() for part in raw.split(",")]
        if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
            raise ValueError("expected a list of strings")
        return raw
    if kind is bool:
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if not isinstance(raw, bool):
            raise ValueError("expected true or false")
        return raw
    if kind is int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise ValueError("expected an integer")
        return int(raw)
    if kind is str:
        if not isinstance(raw, str) or not raw:
            raise ValueError("expected a non-empty string")
        return raw
    raise TypeError(f"no reader for {kind}")
