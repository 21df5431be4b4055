"""Warm in-process server time of the API function against moto.

Prints p50/p99 of POST /v1/jobs and GET /v1/jobs/{id} through the real handler (Powertools
routing, validation, logging, metrics), and how much of it is the AWS SDK (boto3/botocore plus
moto's in-process emulation) versus our code. Usage: .venv/bin/python bench/api.py [calls]
"""

import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import conftest  # noqa: E402,F401  (import paths and fake credentials, as the tests have them)

import botocore.client  # noqa: E402
import botocore.signers  # noqa: E402
from moto import mock_aws  # noqa: E402

from lambda_runtime import LambdaContext, proxy_event  # noqa: E402

sdk_seconds = 0.0


def timed(sdk_method):
    def wrapper(*args, **kwargs):
        global sdk_seconds
        started = time.perf_counter()
        try:
            return sdk_method(*args, **kwargs)
        finally:
            sdk_seconds += time.perf_counter() - started

    return wrapper


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(handler, context, event_for, calls):
    global sdk_seconds
    totals, sdk = [], []
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for index in range(calls):
            event = event_for(index)
            sdk_seconds = 0.0
            started = time.perf_counter()
            response = handler(event, context)
            totals.append(time.perf_counter() - started)
            sdk.append(sdk_seconds)
            assert response["statusCode"] in (200, 201), response
    ours = [t - s for t, s in zip(totals, sdk)]
    return totals, sdk, ours


def main(calls: int) -> None:
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    # Every AWS call and every presigned URL: the SDK's share of the handler's time.
    botocore.client.BaseClient._make_api_call = timed(botocore.client.BaseClient._make_api_call)
    botocore.signers.generate_presigned_url = timed(botocore.signers.generate_presigned_url)
    with mock_aws():
        import boto3
        import api_handler

        boto3.client("dynamodb").create_table(
            TableName=os.environ["TABLE_NAME"],
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("s3").create_bucket(Bucket=os.environ["BUCKET_NAME"])
        context = LambdaContext()
        create_body = {"content_type": "image/jpeg", "content_length": 123456, "filename": "photo.jpg"}
        handler = api_handler.lambda_handler
        job_ids = []

        def post_event(_):
            return proxy_event("POST", "/v1/jobs", create_body)

        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            for _ in range(50):  # warm-up: imports, first clients, Pydantic schemas
                job_ids.append(json.loads(handler(post_event(0), context)["body"])["job_id"])
        post = measure(handler, context, post_event, calls)
        get = measure(handler, context, lambda i: proxy_event("GET", f"/v1/jobs/{job_ids[i % len(job_ids)]}"), calls)

    print(f"API handler, warm, in-process, against moto: {calls} calls each")
    print(f"{'route':<22}{'total p50':>11}{'total p99':>11}{'ours p50':>10}{'ours p99':>10}{'SDK share':>11}")
    for name, (totals, sdk, ours) in [("POST /v1/jobs", post), ("GET /v1/jobs/{id}", get)]:
        share = sum(sdk) / sum(totals)
        print(
            f"{name:<22}{percentile(totals, .5) * 1e3:>9.2f}ms{percentile(totals, .99) * 1e3:>9.2f}ms"
            f"{percentile(ours, .5) * 1e3:>8.2f}ms{percentile(ours, .99) * 1e3:>8.2f}ms{share:>10.0%}"
        )
    print(
        f"post_p99_ms={percentile(post[0], .99) * 1e3:.2f} get_p99_ms={percentile(get[0], .99) * 1e3:.2f} "
        f"ours_post_p99_ms={percentile(post[2], .99) * 1e3:.2f} ours_get_p99_ms={percentile(get[2], .99) * 1e3:.2f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
