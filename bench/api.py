"""Warm in-process server time of the API function against moto.

Prints p50/p99 of POST /v1/jobs (plain, with a new Idempotency-Key, and replaying one), GET
/v1/jobs/{id}, and POST/GET of a batch of max_batch_jobs jobs through the real handler
(Powertools routing, validation, idempotency, logging, metrics), and how much of it is the AWS
SDK (boto3/botocore plus moto's in-process emulation) versus our code.
Usage: .venv/bin/python bench/api.py [--calls N] [--json PATH]
"""

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import botocore.client
import botocore.signers
from moto import mock_aws

from tests.support.fake_aws import create_api_tables, use_fake_aws
from tests.support.lambda_runtime import LambdaContext, proxy_event

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
    ours = [t - s for t, s in zip(totals, sdk, strict=True)]
    return totals, sdk, ours


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (bench/run_all.py)")
    args = parser.parse_args()
    calls = args.calls
    use_fake_aws()
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    # Every AWS call and every presigned URL: the SDK's share of the handler's time.
    botocore.client.BaseClient._make_api_call = timed(botocore.client.BaseClient._make_api_call)
    botocore.signers.generate_presigned_url = timed(botocore.signers.generate_presigned_url)
    with mock_aws():
        import boto3

        from cutout_api import handler as api_handler

        create_api_tables(boto3.client("dynamodb"), os.environ)
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

        def idempotent_event(key: str) -> dict:
            return proxy_event("POST", "/v1/jobs", create_body, {"Idempotency-Key": key})

        post_new_key = measure(handler, context, lambda i: idempotent_event(f"new-{i}"), calls)
        post_replay = measure(handler, context, lambda i: idempotent_event(f"new-{i}"), calls)
        batch_body = {"jobs": [create_body] * api_handler.settings().max_batch_jobs}
        batch_calls = max(10, calls // 20)
        batch_ids = []

        def batch_event(_):
            return proxy_event("POST", "/v1/batches", batch_body)

        post_batch = measure(handler, context, batch_event, batch_calls)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            batch_ids.append(json.loads(handler(batch_event(0), context)["body"])["batch_id"])
        get_batch = measure(handler, context, lambda _: proxy_event("GET", f"/v1/batches/{batch_ids[0]}"), batch_calls)

    summary = {
        route: {
            "total_p50_ms": percentile(totals, 0.5) * 1e3,
            "total_p99_ms": percentile(totals, 0.99) * 1e3,
            "ours_p50_ms": percentile(ours, 0.5) * 1e3,
            "ours_p99_ms": percentile(ours, 0.99) * 1e3,
            "sdk_share": sum(sdk) / sum(totals),
        }
        for route, (totals, sdk, ours) in [
            ("post", post),
            ("get", get),
            ("post_new_idempotency_key", post_new_key),
            ("post_idempotent_replay", post_replay),
            ("post_batch", post_batch),
            ("get_batch", get_batch),
        ]
    }
    batch_size = len(batch_body["jobs"])
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(f"API handler, warm, in-process, against moto: {calls} calls each ({batch_calls} for batches)")
    print(f"{'route':<36}{'total p50':>11}{'total p99':>11}{'ours p50':>10}{'ours p99':>10}{'SDK share':>11}")
    for name, row in [
        ("POST /v1/jobs", summary["post"]),
        ("GET /v1/jobs/{id}", summary["get"]),
        ("POST /v1/jobs, new Idempotency-Key", summary["post_new_idempotency_key"]),
        ("POST /v1/jobs, replayed key", summary["post_idempotent_replay"]),
        (f"POST /v1/batches ({batch_size} jobs)", summary["post_batch"]),
        (f"GET /v1/batches/{{id}} ({batch_size})", summary["get_batch"]),
    ]:
        print(
            f"{name:<36}{row['total_p50_ms']:>9.2f}ms{row['total_p99_ms']:>9.2f}ms"
            f"{row['ours_p50_ms']:>8.2f}ms{row['ours_p99_ms']:>8.2f}ms{row['sdk_share']:>10.0%}"
        )
    print(
        f"post_p99_ms={summary['post']['total_p99_ms']:.2f} get_p99_ms={summary['get']['total_p99_ms']:.2f} "
        f"ours_post_p99_ms={summary['post']['ours_p99_ms']:.2f} ours_get_p99_ms={summary['get']['ours_p99_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
