"""Contract tests of the API function through real API Gateway proxy events, against moto."""

import json
import time

import boto3
import pytest
import requests

import api_handler
from lambda_runtime import proxy_event
from cutout.jobs import JobStatus
from cutout.keys import result_key

JPEG_BYTES = b"\xff\xd8\xff" + b"\x00" * 997


@pytest.fixture
def api(aws, lambda_context):
    """Call the handler the way API Gateway does; returns (status, json body, headers)."""

    def call(method, path, body=None, headers=None):
        response = api_handler.lambda_handler(proxy_event(method, path, body, headers), lambda_context)
        payload = json.loads(response["body"]) if response.get("body") else None
        return response["statusCode"], payload, response.get("multiValueHeaders", {})

    return call


def start_processing(aws, job_id: str, when: float) -> None:
    """Move a new job to processing the way the normalize and inference stages do."""
    for expected, target in [
        (JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING),
        (JobStatus.NORMALIZING, JobStatus.QUEUED),
        (JobStatus.QUEUED, JobStatus.PROCESSING),
    ]:
        assert aws.jobs.transition(job_id, expected, target, when) is not None


def succeed(aws, job_id: str, when: float, width: int, height: int, size: int) -> None:
    start_processing(aws, job_id, when)
    aws.jobs.transition(
        job_id,
        JobStatus.PROCESSING,
        JobStatus.SUCCEEDED,
        when,
        result={"format": "png", "content_type": "image/png", "width": width, "height": height, "bytes": size},
        result_expires_at=int(when + 3600),
    )


def create(api, **overrides):
    body = {"content_type": "image/jpeg", "content_length": len(JPEG_BYTES), **overrides}
    return api("POST", "/v1/jobs", body)


def test_create_job_returns_upload_instructions(api, aws):
    status, body, _ = create(api, filename="holiday.jpg", output={"format": "webp"})

    assert status == 201
    assert body["status"] == "awaiting_upload"
    assert body["upload"]["method"] == "PUT"
    assert body["upload"]["headers"] == {"Content-Type": "image/jpeg", "Content-Length": str(len(JPEG_BYTES))}
    assert "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost" in body["upload"]["url"]
    assert body["links"] == {"self": f"/v1/jobs/{body['job_id']}"}
    stored = aws.jobs.get(body["job_id"], time.time())
    assert stored["status"] == "awaiting_upload" and stored["output_format"] == "webp"
    assert stored["expires_at"] > time.time() + 3600


def test_presigned_put_uploads_the_declared_bytes(api, aws):
    _, body, _ = create(api)

    upload = requests.put(body["upload"]["url"], data=JPEG_BYTES, headers=body["upload"]["headers"], timeout=10)

    assert upload.status_code == 200
    assert aws.object_keys() == [f"uploads/{body['job_id']}"]


def test_get_job_shows_status_and_stages(api):
    _, created, _ = create(api)

    status, body, _ = api("GET", f"/v1/jobs/{created['job_id']}")

    assert status == 200
    assert body["status"] == "awaiting_upload"
    assert set(body["stages"]) == {"awaiting_upload"}
    assert body["error"] is None and body["result"] is None


def test_succeeded_job_has_a_short_lived_result_url(api, aws):
    _, created, _ = create(api, filename="my photo.jpg")
    job_id, now = created["job_id"], time.time()
    aws.store.write(result_key(job_id, "png"), b"\x89PNG result", "image/png")
    succeed(aws, job_id, now, width=640, height=480, size=11)

    status, body, _ = api("GET", f"/v1/jobs/{job_id}")

    assert status == 200 and body["status"] == "succeeded"
    assert body["result"]["width"] == 640 and body["result"]["format"] == "png"
    download = requests.get(body["result"]["url"], timeout=10)
    assert download.content == b"\x89PNG result"
    assert 'filename="my_photo-cutout.png"' in download.headers["Content-Disposition"]


def test_result_past_its_ttl_is_expired_without_url(api, aws):
    _, created, _ = create(api)
    job_id, past = created["job_id"], time.time() - 7200
    succeed(aws, job_id, past, width=1, height=1, size=1)

    _, body, _ = api("GET", f"/v1/jobs/{job_id}")

    assert body["status"] == "expired" and body["result"] is None


@pytest.mark.parametrize(
    "job_id", ["nope", "00000000-0000-4000-8000-000000000000", "../../etc/passwd", "A" * 64, "A" * 5000]
)
def test_unknown_or_malformed_job_is_404(api, job_id):
    status, body, _ = api("GET", f"/v1/jobs/{job_id}")

    assert status == 404
    assert body["error"]["code"] == "not_found"


def test_job_past_its_retention_is_404_even_before_ttl_deletion(api, aws):
    _, created, _ = create(api)
    # The item stays in the table: DynamoDB's TTL deletes expired items only eventually.
    boto3.resource("dynamodb").Table(aws.table_name).update_item(
        Key={"job_id": created["job_id"]},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )

    status, _, _ = api("GET", f"/v1/jobs/{created['job_id']}")

    assert status == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"content_length": 10}, "content_type"),
        ({"content_type": "image/jpeg"}, "content_length"),
        ({"content_type": "image/jpeg", "content_length": 0}, "content_length"),
        ({"content_type": "image/jpeg", "content_length": "ten"}, "content_length"),
        ({"content_type": "image/jpeg", "content_length": True}, "content_length"),
        ({"content_type": "image/jpeg", "content_length": "10"}, "content_length"),
        ({"content_type": "image/jpeg", "content_length": 10, "output": {"format": "gif"}}, "output.format"),
        ({"content_type": "image/jpeg", "content_length": 10, "bucket": "other"}, "bucket"),
    ],
)
def test_invalid_body_is_400_with_the_field_named(api, body, field):
    status, payload, _ = api("POST", "/v1/jobs", body)

    assert status == 400
    assert payload["error"]["code"] == "bad_request"
    assert any(p["field"].endswith(field) for p in payload["error"]["details"]["problems"])


@pytest.mark.parametrize("raw", ["not json", "", "[1, 2]", "null"])
def test_body_that_is_not_a_json_object_is_400(api, raw):
    status, payload, _ = api("POST", "/v1/jobs", raw)

    assert status == 400
    assert payload["error"]["code"] == "bad_request"


def test_oversized_upload_is_413(api):
    status, payload, _ = create(api, content_length=25 * 1024 * 1024 + 1)

    assert status == 413
    assert payload["error"]["code"] == "payload_too_large"
    assert payload["error"]["details"]["max_bytes"] == 25 * 1024 * 1024


@pytest.mark.parametrize("content_type", ["image/gif", "image/svg+xml", "application/zip", "text/html"])
def test_unsupported_type_is_415(api, content_type):
    status, payload, _ = create(api, content_type=content_type)

    assert status == 415
    assert payload["error"]["code"] == "unsupported_media_type"


def test_cancel_before_processing(api, aws):
    _, created, _ = create(api)

    status, body, _ = api("DELETE", f"/v1/jobs/{created['job_id']}")

    assert status == 200 and body["status"] == "cancelled"
    assert aws.jobs.get(created["job_id"], time.time())["status"] == "cancelled"


def test_cancel_once_processing_is_409(api, aws):
    _, created, _ = create(api)
    job_id, now = created["job_id"], time.time()
    start_processing(aws, job_id, now)

    status, body, _ = api("DELETE", f"/v1/jobs/{job_id}")

    assert status == 409
    assert body["error"]["code"] == "not_cancellable"
    assert aws.jobs.get(job_id, now)["status"] == "processing"


def test_cancel_unknown_job_is_404(api):
    status, _, _ = api("DELETE", "/v1/jobs/00000000-0000-4000-8000-000000000000")

    assert status == 404


def test_health_and_openapi(api):
    status, body, _ = api("GET", "/v1/health")
    assert (status, body) == (200, {"status": "ok"})

    status, spec, _ = api("GET", "/v1/openapi.json")
    assert status == 200
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/health"} <= set(spec["paths"])
    assert "CreateJobBody" in spec["components"]["schemas"]


def test_unknown_route_is_404_json(api):
    status, body, _ = api("GET", "/v2/nothing")

    assert status == 404 and body["error"]["code"] == "not_found"


def test_aws_failure_is_a_json_500_without_stack_trace(api, aws):
    boto3.client("dynamodb").delete_table(TableName=aws.table_name)

    status, body, _ = create(api)

    assert status == 500
    assert body == {"error": {"code": "internal_error", "message": "Cutout could not serve this request; try again"}}


def test_cors_headers_for_browser_origins(api):
    _, _, headers = api("GET", "/v1/health", headers={"Origin": "https://app.example.com"})

    assert headers["Access-Control-Allow-Origin"] == ["*"]


def test_job_whose_upload_never_came_is_expired_for_good(api, aws):
    _, created, _ = create(api)
    job_id = created["job_id"]
    boto3.resource("dynamodb").Table(aws.table_name).update_item(
        Key={"job_id": job_id},
        UpdateExpression="SET upload_expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )

    status, body, _ = api("GET", f"/v1/jobs/{job_id}")
    late_upload = aws.jobs.transition(job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, time.time())
    cancel_status, _, _ = api("DELETE", f"/v1/jobs/{job_id}")

    assert status == 200 and body["status"] == "expired"
    assert body["error"]["code"] == "upload_not_received"
    assert late_upload is None, "a late S3 event finds the job expired"
    assert cancel_status == 409
    assert aws.jobs.get(job_id, time.time())["status"] == "expired"


def test_job_stalled_in_a_stage_reads_failed_and_stays_failed(api, aws):
    _, created, _ = create(api)
    job_id, long_ago = created["job_id"], time.time() - 3600
    start_processing(aws, job_id, long_ago)

    status, body, _ = api("GET", f"/v1/jobs/{job_id}")
    late_worker = aws.jobs.transition(job_id, JobStatus.PROCESSING, JobStatus.SUCCEEDED, time.time())

    assert status == 200
    assert body["status"] == "failed" and body["error"]["code"] == "stalled"
    assert late_worker is None
    assert aws.jobs.get(job_id, time.time())["status"] == "failed"
