"""Idempotent submits: a client that sends `Idempotency-Key` with POST /v1/jobs or /v1/batches may
retry the call and gets the same job(s), never a second one.

Powertools' idempotency utility records each key in the idempotency table (its own item shape:
partition key ``id``, TTL ``expiration``). A key is scoped to its caller, so two clients cannot
collide on one, and it is bound to the body it first came with: the same key with another body
is a conflict, not a replay.
"""

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PARTITION_KEY = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
IDEMPOTENCY_WINDOW_S = 24 * 3600
MAX_IDEMPOTENCY_KEY_CHARS = 255
