"""Limits and settings, read once from the environment; the defaults are the documented ones."""

import os
from dataclasses import dataclass, fields

from cutout.browser import ANY_ORIGIN
from cutout.clients import ApiAuth
from cutout.models import DEFAULT_MODEL, MODELS

MIB = 1024 * 1024
# A batch is created within one API call (29 s at most) and read back with one BatchGetItem.
MAX_BATCH_JOBS = 100
Origins = tuple[str, ...]


def read_origins(raw: str) -> Origins:
    """ALLOWED_ORIGINS as the stack writes it: comma-separated origins; none means any origin."""
    return tuple(origin.strip() for origin in raw.split(",") if origin.strip()) or (ANY_ORIGIN,)


def read_flag(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError(f"expected true or false, not {raw!r}")
    return raw.lower() == "true"


READERS = {int: int, str: str, bool: read_flag, Origins: read_origins}


@dataclass(frozen=True)
class Settings:
    table_name: str = ""
    batch_table_name: str = ""
    idempotency_table_name: str = ""
    bucket_name: str = ""
    queue_url: str = ""
    dead_letter_queue_url: str = ""
    notification_dead_letter_queue_url: str = ""
    stats_table_name: str = ""
    # The usage plans whose keys may read GET /v1/stats (comma-separated names; cdk.json marks them admin).
    admin_usage_plans: str = ""
    # Where jobs' terminal events go (cutout.events), the queue of webhook deliveries, and the
    # Secrets Manager secret that signs them.
    event_bus_name: str = ""
    webhook_queue_url: str = ""
    # Where each new job's deadline check waits (cutout.jobs.check_delay_s).
    deadline_queue_url: str = ""
    webhook_secret_arn: str = ""
    # api_key: API Gateway requires a key and each job belongs to the key that created it.
    # none: anyone may call, and a job's id is what lets a client read or cancel it.
    api_auth: str = ApiAuth.API_KEY.value
    max_batch_jobs: int = 100
    max_upload_bytes: int = 25 * MIB
    max_input_pixels: int = 50_000_000
    # Each side is bounded as well as the area: a 1 x 50,000,000 sliver peaked at 3.3 GB. 2^15
    # still takes a 21:1 panorama or a long phone screenshot at the pixel limit, and peaks below
    # a square image of that many pixels (bench/normalize.py).
    max_input_side: int = 32768
    max_output_side: int = 4096
    upload_url_ttl_s: int = 900
    result_ttl_s: int = 3600
    result_url_ttl_s: int = 300
    job_retention_s: int = 86400
    max_receive_count: int = 3
    stall_timeout_s: int = 1800
    queued_timeout_s: int = 21600
    # A webhook delivery is tried this many times, waiting first_retry_s after the first failure
    # and RETRY_GROWTH times longer after each next (cutout.webhooks), then dead-lettered.
    webhook_attempts: int = 8
    webhook_first_retry_s: int = 5
    webhook_timeout_s: int = 10
    # Callback URLs may be http and resolve to private addresses: only for a local deployment's tests.
    webhook_allow_private: bool = False
    allowed_origins: Origins = (ANY_ORIGIN,)
    # "virtual" on AWS; "path" where bucket host names do not resolve (LocalStack).
    s3_addressing_style: str = "virtual"
    # The model a job gets when it names none (a cutout.models name), and the folder holding the
    # networks' files in the inference stage.
    default_model: str = DEFAULT_MODEL
    cutout_model_dir: str = "/opt/models"

    @property
    def admin_plans(self) -> frozenset[str]:
        return frozenset(plan for plan in self.admin_usage_plans.split(",") if plan)

    @property
    def watched_queues(self) -> dict[str, str]:
        """cutout.stats.WATCHED_QUEUES' URLs."""
        return {
            "inference": self.queue_url,
            "inference_dead_letters": self.dead_letter_queue_url,
            "webhooks": self.webhook_queue_url,
            "notification_dead_letters": self.notification_dead_letter_queue_url,
        }

    @classmethod
    def from_env(cls, environ=None) -> "Settings":
        """Each field from its upper-case environment variable, e.g. MAX_UPLOAD_BYTES."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = READERS[field.type](raw)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if min(self.max_upload_bytes, self.max_input_pixels, self.max_input_side, self.max_output_side) <= 0:
            raise ValueError("size limits must be positive")
        if min(self.upload_url_ttl_s, self.result_url_ttl_s, self.stall_timeout_s, self.queued_timeout_s) <= 0:
            raise ValueError("time limits must be positive")
        if self.result_url_ttl_s > self.result_ttl_s:
            raise ValueError("RESULT_URL_TTL_S must not outlive RESULT_TTL_S")
        if min(self.webhook_attempts, self.webhook_first_retry_s, self.webhook_timeout_s) <= 0:
            raise ValueError("webhook attempts and times must be positive")
        if self.api_auth not in ApiAuth:
            raise ValueError(f"API_AUTH must be one of {', '.join(ApiAuth)}")
        if not 1 <= self.max_batch_jobs <= MAX_BATCH_JOBS:
            raise ValueError(f"MAX_BATCH_JOBS must be 1–{MAX_BATCH_JOBS}")
        if self.default_model not in MODELS:
            raise ValueError(f"DEFAULT_MODEL must be one of {', '.join(MODELS)}")
        if self.job_retention_s <= self.result_ttl_s + self.upload_url_ttl_s:
            raise ValueError("JOB_RETENTION_S must exceed UPLOAD_URL_TTL_S + RESULT_TTL_S")
