"""What the API tells browsers, the same from the API function and from API Gateway (preflights and
the errors it answers itself): which origins may call it, and the headers every answer carries."""

from dataclasses import dataclass

ANY_ORIGIN = "*"
# Answers hold capability URLs (the job's, the presigned ones) and describe a job as it was:
# never cached, never sniffed as anything but the JSON they are.
ANSWER_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class CorsPolicy:
    origins: tuple[str, ...]  # the allowed_origins setting
    # Beyond what CORS always allows, a client sends a JSON body, its API key and, to make a
    # submit safe to retry, an idempotency key.
    allow_headers: tuple[str, ...] = ("Content-Type", "X-API-Key", "Idempotency-Key")
    max_age_s: int = 600
