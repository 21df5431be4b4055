"""Contract tests of the API function through real API Gateway proxy events, against moto.

Every response the handler gives here is checked against the OpenAPI document it serves.
"""

import base64
import json
import re
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
import schemathesis
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from cutout import jobs as job_rules
from cutout.aws import settings
from cutout.browser import ANSWER_HEADERS
from cutout.formats import ACCEPTED_UPLOAD_TYPES
from cutout.jobs import TTL_ATTRIBUTE, Job, JobRequest, JobStatus, ResultFile
from cutout.keys import result_key
from cutout.limits import service_limits
from cutout.models import MODELS, model_catalogue
from cutout.output import MAX_MAX_SIDE, MIN_MAX_SIDE, OutputFormat, OutputOptions, SubjectBox
from cutout.settings import Settings
from cutout.views import public_view
from cutout_api import handler as api_handler
from cutout_notify.handler import stream_handler
from tests.support.lambda_runtime import LambdaContext, proxy_event
from tests.support.stream_events import inserted, stream_event

JPEG_BYTES = b"\xff\xd8\xff" + b"\x00" * 997
CONFORMANCE_CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
# What each route answers, by the document; 429 comes from API Gateway's throttle, not the function.
DOCUMENTED_STATUSES = {
    ("POST", "/v1/jobs"): {"201", "400", "403", "409", "413", "415", "429", "500"},
    ("GET", "/v1/jobs"): {"200", "400", "403", "404", "429", "500"},
    ("GET", "/v1/jobs/{job_id}"): {"200", "403", "404", "429", "500"},
    ("DELETE", "/v1/jobs/{job_id}"): {"200", "403", "404", "409", "429", "500"},
    ("POST", "/v1/batches"): {"201", "400", "403", "409", "415", "429", "500"},
    ("GET", "/v1/batches/{batch_id}"): {"200", "403", "404", "429", "500"},
    ("GET", "/v1/stats"): {"200", "403", "404", "429", "500"},
    ("GET", "/v1/health"): {"200", "429", "500"},
    ("GET", "/v1/limits"): {"200", "403", "429", "500"},
    ("GET", "/v1/models"): {"200", "403", "429", "500"},
}
CANNOT_FAIL = {("GET", "/v1/health"), ("GET", "/v1/limits"), ("GET", "/v1/models")}


def openapi_document() -> dict:
    response = api_handler.lambda_handler(proxy_event("GET", "/v1/openapi.json"), LambdaContext())
    return json.loads(response["body"])


@pytest.fixture(scope="module")
def contract():
    return schemathesis.openapi.from_dict(openapi_document())


def check_against_contract(contract, event: dict, response: dict) -> None:
    """The response is one the document allows for its route: status, content type and body."""
    operation = contract.find_operation_by_path(event["httpMethod"], event["path"])
    if operation is None:  # an unknown route, or the document itself
        return
    template = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", operation.path)
    case = operation.Case(path_parameters=re.fullmatch(template, event["path"]).groupdict())
    url = f"https://{event['requestContext']['domainName']}{event['requestContext']['path']}"
    case.validate_response(
        schemathesis.Response(
            status_code=response["statusCode"],
            headers=response["multiValueHeaders"],
            content=response["body"].encode(),
            request=requests.Request(event["httpMethod"], url).prepare(),
            elapsed=0.0,
            verify=True,
        ),
        checks=CONFORMANCE_CHECKS,
    )


@pytest.fixture
def call_handler(aws, lambda_context, contract):
    """Call the handler with an API Gateway event, check the answer against the document and
    the headers every answer carries; returns (status, json body, headers)."""

    def call(event: dict):
        response = api_handler.lambda_handler(event, lambda_context)
        check_against_contract(contract, event, response)
        headers = response["multiValueHeaders"]
        assert {name: headers[name] for name in ANSWER_HEADERS} == {
            "Cache-Control": ["no-store"],
            "X-Content-Type-Options": ["nosniff"],
        }
        return response["statusCode"], json.loads(response["body"]), headers

    return call


@pytest.fixture
def api(call_handler):
    """Call the handler the way API Gateway does; returns (status, json body, headers)."""

    def call(method, path, body=None, headers=None):
        return call_handler(proxy_event(method, path, body, headers))

    return call


def event_for_url(method: str, url: str, **overrides) -> dict:
    """The proxy event API Gateway makes of a request to `url`: the first path segment is the stage."""
    parts = urlsplit(url)
    _, stage, path = parts.path.split("/", 2)
    headers = {"Host": parts.netloc, "X-Forwarded-Proto": parts.scheme, **overrides}
    return proxy_event(method, f"/{path}", headers=headers, stage=stage)


def localstack_event_for_url(method: str, url: str) -> dict:
    """The event LocalStack makes of a request to its path-style URL, as seen on LocalStack 2026.3:
    /restapis/<api>/<stage>/_user_request_ is gone, the request's path starts at the stage."""
    parts = urlsplit(url)
    match = re.fullmatch(r"/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)", parts.path)
    assert match, url
    event = proxy_event(
        method, match["path"], headers={"Host": parts.netloc, "X-Forwarded-Proto": "HTTP"}, stage=match["stage"]
    )
    event["requestContext"]["apiId"] = match["api"]
    return event


def start_processing(aws, job_id: str, when: float) -> None:
    """Move a new job to processing the way the normalize and inference stages do."""
    for expected, target in [
        (JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING),
        (JobStatus.NORMALIZING, JobStatus.QUEUED),
        (JobStatus.QUEUED, JobStatus.PROCESSING),
    ]:
        assert aws.jobs.transition(job_id, expected, target, when) is not None


def succeed(
    aws, job_id: str, when: float, width: int, height: int, size: int, subject: SubjectBox | None = None
) -> None:
    start_processing(aws, job_id, when)
    job = aws.jobs.get(job_id, when)
    output_format = job.output_format
    aws.jobs.transition(
        job_id,
        JobStatus.PROCESSING,
        JobStatus.SUCCEEDED,
        when,
        result=ResultFile(output_format, output_format.content_type, width, height, size, subject, job.model),
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
    assert body["links"] == {
        "self": f"https://abc123.execute-api.us-east-1.amazonaws.com/v1api/v1/jobs/{body['job_id']}"
    }
    stored = aws.jobs.get(body["job_id"], time.time())
    assert stored.status == "awaiting_upload" and stored.output == OutputOptions(format=OutputFormat.WEBP)
    assert stored.expires_at > time.time() + 3600


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
    assert body["error"]["code"] == "result_expired"
    assert job_rules.iso(int(past + 3600)) in body["error"]["message"]


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
    aws.overwrite(created["job_id"], TTL_ATTRIBUTE, int(time.time()) - 1)

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
        ({"content_type": "image/jpeg", "content_length": 10, "output": "png"}, "output"),
        ({"content_type": "image/jpeg", "content_length": 10, "output": None}, "output"),
        ({"content_type": "image/jpeg", "content_length": 10, "bucket": "other"}, "bucket"),
    ],
)
def test_invalid_body_is_400_with_the_field_named(api, body, field):
    status, payload, _ = api("POST", "/v1/jobs", body)

    assert status == 400
    assert payload["error"]["code"] == "bad_request"
    assert any(p["field"].endswith(field) for p in payload["error"]["details"]["problems"])


@pytest.mark.parametrize(
    "output, field",
    [
        ({"bg_color": "#FFF"}, "output.bg_color"),
        ({"bg_color": "white"}, "output.bg_color"),
        ({"format": "jpeg", "bg_color": "#00000000"}, "output.bg_color"),
        ({"format": "mask", "bg_color": "#000000"}, "output.bg_color"),
        ({"crop_margin": "10px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "501px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "51%"}, "output.crop_margin"),
        ({"crop": "true"}, "output.crop"),
        ({"max_side": MIN_MAX_SIDE - 1}, "output.max_side"),
        ({"max_side": MAX_MAX_SIDE + 1}, "output.max_side"),
        ({"max_side": True}, "output.max_side"),
        ({"max_side": "20"}, "output.max_side"),
        ({"format": "jpg"}, "output.format"),
        ({"transparent": False}, "output.transparent"),
    ],
)
def test_a_bad_output_option_is_400_naming_it(api, output, field):
    status, payload, _ = create(api, output=output)

    assert status == 400
    assert payload["error"]["code"] == "bad_request"
    (problem,) = payload["error"]["details"]["problems"]
    assert problem["field"] == field and problem["problem"]


@pytest.mark.parametrize(
    "output",
    [
        {"format": "jpeg"},
        {"format": "jpeg", "bg_color": "#336699"},
        {"format": "png", "bg_color": "#33669980"},
        {"format": "webp", "crop": True, "crop_margin": "20px"},
        {"crop": True, "crop_margin": "5%", "max_side": 512},
        {"format": "mask", "max_side": MIN_MAX_SIDE},
    ],
)
def test_each_output_option_is_stored_and_echoed_in_the_result(api, aws, output):
    _, created, _ = create(api, output=output)
    job_id, now = created["job_id"], time.time()
    options = OutputOptions.from_request(output)
    aws.store.write(result_key(job_id, options.format.extension), b"result", options.format.content_type)
    succeed(aws, job_id, now, width=640, height=480, size=6, subject=SubjectBox(10, 20, 300, 400))

    status, body, _ = api("GET", f"/v1/jobs/{job_id}")

    assert aws.jobs.get(job_id, now).output == options
    assert status == 200
    assert body["result"]["output"] == options.to_json()
    assert body["result"]["output"] == {**body["result"]["output"], **output}
    assert body["result"]["subject"] == {"x": 10, "y": 20, "width": 300, "height": 400}
    assert body["result"]["format"] == options.format
    assert body["result"]["content_type"] == options.format.content_type
    download = requests.get(body["result"]["url"], timeout=10)
    assert f"-cutout.{options.format.extension}" in download.headers["Content-Disposition"]


def test_a_result_without_a_subject_says_so(api, aws):
    _, created, _ = create(api, output={"crop": True})
    job_id, now = created["job_id"], time.time()
    succeed(aws, job_id, now, width=64, height=48, size=6, subject=None)

    _, body, _ = api("GET", f"/v1/jobs/{job_id}")

    assert body["result"]["subject"] is None
    assert body["result"]["output"]["crop"] is True


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
    assert aws.jobs.get(created["job_id"], time.time()).status == "cancelled"


def test_cancel_once_processing_is_409(api, aws):
    _, created, _ = create(api)
    job_id, now = created["job_id"], time.time()
    start_processing(aws, job_id, now)

    status, body, _ = api("DELETE", f"/v1/jobs/{job_id}")

    assert status == 409
    assert body["error"]["code"] == "not_cancellable"
    assert aws.jobs.get(job_id, now).status == "processing"


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
    aws.overwrite(job_id, "upload_expires_at", int(time.time()) - 1)

    status, body, _ = api("GET", f"/v1/jobs/{job_id}")
    late_upload = aws.jobs.transition(job_id, JobStatus.AWAITING_UPLOAD, JobStatus.NORMALIZING, time.time())
    cancel_status, _, _ = api("DELETE", f"/v1/jobs/{job_id}")

    assert status == 200 and body["status"] == "expired"
    assert body["error"]["code"] == "upload_not_received"
    assert late_upload is None, "a late S3 event finds the job expired"
    assert cancel_status == 409
    assert aws.jobs.get(job_id, time.time()).status == "expired"


def test_job_stalled_in_a_stage_reads_failed_and_stays_failed(api, aws):
    _, created, _ = create(api)
    job_id, long_ago = created["job_id"], time.time() - 3600
    start_processing(aws, job_id, long_ago)

    status, body, _ = api("GET", f"/v1/jobs/{job_id}")
    late_worker = aws.jobs.transition(job_id, JobStatus.PROCESSING, JobStatus.SUCCEEDED, time.time())

    assert status == 200
    assert body["status"] == "failed" and body["error"]["code"] == "stalled"
    assert late_worker is None
    assert aws.jobs.get(job_id, time.time()).status == "failed"


def raw_post(body, content_type: str | None = "application/json", base64_encoded: bool = False) -> dict:
    """A POST /v1/jobs event carrying `body` exactly as API Gateway hands it over."""
    event = proxy_event("POST", "/v1/jobs", body)
    if content_type is None:
        for headers in (event["headers"], event["multiValueHeaders"]):
            del headers["Content-Type"]
    else:
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
    event["isBase64Encoded"] = base64_encoded
    return event


VALID_BODY = json.dumps({"content_type": "image/jpeg", "content_length": 1000})
NOT_UTF8 = base64.b64encode(b'{"content_type": "image/jpeg\xff", "content_length": 1000}').decode()
NESTED_3000 = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    "event, status, code",
    [
        # A "simple" request any web page can send cross-origin, without a preflight.
        (raw_post(VALID_BODY, "text/plain"), 415, "unsupported_media_type"),
        (raw_post(VALID_BODY, "text/plain;charset=UTF-8"), 415, "unsupported_media_type"),
        (
            raw_post("content_type=image/jpeg&content_length=1000", "application/x-www-form-urlencoded"),
            415,
            "unsupported_media_type",
        ),
        (raw_post(VALID_BODY, None), 415, "unsupported_media_type"),
        # Bytes that are not UTF-8: API Gateway (and LocalStack) pass them base64-encoded.
        (raw_post(NOT_UTF8, base64_encoded=True), 400, "bad_request"),
        (raw_post('{"content_type": "image/jpeg\udcff", "content_length": 1000}'), 400, "bad_request"),
        (
            raw_post('{"content_type": "image/jpeg", "content_length": 1000, "output": ' + NESTED_3000 + "}"),
            400,
            "bad_request",
        ),
        (raw_post(NESTED_3000), 400, "bad_request"),
        # One digit past Python's int_max_str_digits (4,300).
        (raw_post('{"content_type": "image/jpeg", "content_length": ' + "9" * 4301 + "}"), 400, "bad_request"),
        (
            raw_post(json.dumps({"content_type": "image/jpeg", "filename": "x" * api_handler.MAX_BODY_BYTES})),
            400,
            "bad_request",
        ),
    ],
    ids=[
        "text-plain",
        "text-plain-charset",
        "form",
        "no-content-type",
        "invalid-utf8",
        "lone-surrogate",
        "nested-3000",
        "array-3000",
        "int-4301-digits",
        "over-body-limit",
    ],
)
def test_a_body_the_api_cannot_read_is_a_4xx_never_a_logged_500(call_handler, capfd, event, status, code):
    answer, body, _ = call_handler(event)

    assert (answer, body["error"]["code"]) == (status, code), body
    assert '"level":"ERROR"' not in capfd.readouterr().out


def test_json_with_a_charset_parameter_is_accepted(call_handler):
    status, body, _ = call_handler(raw_post(VALID_BODY, "application/json; charset=utf-8"))

    assert status == 201, body


def test_the_document_is_the_contract(api):
    status, spec, _ = api("GET", "/v1/openapi.json")

    assert status == 200
    assert spec["servers"] == [{"url": "https://abc123.execute-api.us-east-1.amazonaws.com/v1api"}]
    operations = {
        (method.upper(), path): operation for path, item in spec["paths"].items() for method, operation in item.items()
    }
    assert {route: set(operation["responses"]) for route, operation in operations.items()} == DOCUMENTED_STATUSES
    success = {
        ("POST", "/v1/jobs"): "CreatedJob",
        ("GET", "/v1/jobs"): "JobPage",
        ("POST", "/v1/batches"): "CreatedBatch",
        ("GET", "/v1/batches/{batch_id}"): "BatchView",
        ("GET", "/v1/stats"): "OperatorStats",
        ("GET", "/v1/jobs/{job_id}"): "JobView",
        ("DELETE", "/v1/jobs/{job_id}"): "JobView",
        ("GET", "/v1/health"): "Health",
        ("GET", "/v1/limits"): "ServiceLimits",
        ("GET", "/v1/models"): "ModelCatalogue",
    }
    for route, operation in operations.items():
        for status, response in operation["responses"].items():
            model = success[route] if status.startswith("2") else "ErrorBody"
            assert response["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}, (
                route,
                status,
            )
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["security"] == [{"ApiKey": []}]
    assert spec["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert [route for route, operation in operations.items() if "security" in operation] == [("GET", "/v1/health")]
    assert operations[("GET", "/v1/health")]["security"] == [{}]
    schemas = spec["components"]["schemas"]
    declared = schemas["CreateJobBody"]["properties"]
    assert declared["content_type"]["enum"] == list(ACCEPTED_UPLOAD_TYPES)
    assert declared["content_length"]["maximum"] == settings().max_upload_bytes
    assert declared["model"]["enum"] == list(MODELS)
    options_ref = {"$ref": "#/components/schemas/OutputOptions"}
    assert declared["output"] == options_ref == schemas["JobResult"]["properties"]["output"]
    options = schemas["OutputOptions"]["properties"]
    assert set(options) == {"format", "bg_color", "crop", "crop_margin", "max_side"}
    assert options["format"]["enum"] == ["png", "webp", "mask", "jpeg"]
    assert (options["max_side"]["minimum"], options["max_side"]["maximum"]) == (MIN_MAX_SIDE, MAX_MAX_SIDE)
    assert options["crop"]["type"] == "boolean"
    assert options["bg_color"]["pattern"] and options["crop_margin"]["pattern"]
    assert schemas["OutputOptions"]["additionalProperties"] is False
    assert schemas["JobResult"]["properties"]["subject"] == {
        "anyOf": [{"$ref": "#/components/schemas/SubjectBox"}, {"type": "null"}]
    }
    assert set(schemas["SubjectBox"]["required"]) == {"x", "y", "width", "height"}


def test_every_route_answers_as_its_document_says(api, aws, operator_aws, call_handler, monkeypatch):
    """Each documented status the function itself sends, produced for real and checked (by the
    api fixture) against the document; 429 is API Gateway's, and so is 403 on the routes that only
    read the function's settings, which cannot fail on their own either."""
    seen = set()

    def record(route, answer):
        seen.add((route, str(answer[0])))
        return answer

    post, get, delete = ("POST", "/v1/jobs"), ("GET", "/v1/jobs/{job_id}"), ("DELETE", "/v1/jobs/{job_id}")
    listing, post_batch, get_batch = ("GET", "/v1/jobs"), ("POST", "/v1/batches"), ("GET", "/v1/batches/{batch_id}")
    _, created, _ = record(post, create(api))
    record(post, create(api, content_length=0))
    record(post, create(api, content_length=settings().max_upload_bytes + 1))
    record(post, create(api, content_type="image/gif"))
    record(post, api("POST", "/v1/jobs", {"content_type": "image/jpeg", "content_length": 1}, {"Idempotency-Key": "k"}))
    record(post, api("POST", "/v1/jobs", {"content_type": "image/jpeg", "content_length": 2}, {"Idempotency-Key": "k"}))
    _, queued, _ = create(api)
    _, finished, _ = create(api)
    aws.store.write(result_key(finished["job_id"], "png"), b"\x89PNG result", "image/png")
    succeed(aws, finished["job_id"], time.time(), width=1, height=1, size=11)
    record(get, api("GET", f"/v1/jobs/{created['job_id']}"))
    status, with_result, _ = record(get, api("GET", f"/v1/jobs/{finished['job_id']}"))
    assert status == 200 and with_result["result"]["url"]
    record(get, api("GET", "/v1/jobs/00000000-0000-4000-8000-000000000000"))
    record(delete, api("DELETE", f"/v1/jobs/{queued['job_id']}"))
    record(delete, api("DELETE", "/v1/jobs/00000000-0000-4000-8000-000000000000"))
    start_processing(aws, created["job_id"], time.time())
    record(delete, api("DELETE", f"/v1/jobs/{created['job_id']}"))
    record(listing, api("GET", "/v1/jobs"))
    record(listing, call_handler(proxy_event("GET", "/v1/jobs", query={"limit": "0"})))
    batch_item = {"content_type": "image/jpeg", "content_length": 10}
    _, batch, _ = record(post_batch, api("POST", "/v1/batches", {"jobs": [batch_item]}))
    record(post_batch, api("POST", "/v1/batches", {"jobs": []}))
    record(post_batch, api("POST", "/v1/batches", {"jobs": [batch_item]}, {"Content-Type": "text/plain"}))
    record(post_batch, api("POST", "/v1/batches", {"jobs": [batch_item]}, {"Idempotency-Key": "k"}))
    record(post_batch, api("POST", "/v1/batches", {"jobs": [batch_item] * 2}, {"Idempotency-Key": "k"}))
    record(get_batch, api("GET", f"/v1/batches/{batch['batch_id']}"))
    record(get_batch, api("GET", "/v1/batches/00000000-0000-4000-8000-000000000000"))
    stats = ("GET", "/v1/stats")
    record(stats, call_handler(proxy_event("GET", "/v1/stats", api_key_id=operator_aws["admin"])))
    record(stats, call_handler(proxy_event("GET", "/v1/stats", api_key_id=operator_aws["free"])))
    for route in (post, listing, get, delete, post_batch, get_batch):
        path = route[1].format(job_id=finished["job_id"], batch_id=batch["batch_id"])
        record(route, call_handler(proxy_event(route[0], path, {"jobs": [batch_item]}, api_key_id=None)))
    for route in CANNOT_FAIL:
        record(route, api(*route))
    boto3.client("dynamodb").delete_table(TableName=aws.table_name)
    record(post, create(api))
    record(get, api("GET", f"/v1/jobs/{finished['job_id']}"))
    record(delete, api("DELETE", f"/v1/jobs/{finished['job_id']}"))
    record(listing, api("GET", "/v1/jobs"))
    record(post_batch, api("POST", "/v1/batches", {"jobs": [batch_item]}))
    record(get_batch, api("GET", f"/v1/batches/{batch['batch_id']}"))
    boto3.client("dynamodb").delete_table(TableName=settings().stats_table_name)
    record(stats, call_handler(proxy_event("GET", "/v1/stats", api_key_id=operator_aws["admin"])))
    monkeypatch.setenv("API_AUTH", "none")
    settings.cache_clear()
    record(listing, api("GET", "/v1/jobs"))
    record(stats, api("GET", "/v1/stats"))

    documented = {(route, status) for route, statuses in DOCUMENTED_STATUSES.items() for status in statuses}
    gateways_own = {(route, "429") for route in DOCUMENTED_STATUSES} | {(route, "403") for route in CANNOT_FAIL}
    assert seen == documented - gateways_own - {(route, "500") for route in CANNOT_FAIL}


def test_links_self_is_the_job_at_the_stage_the_client_called(api, call_handler):
    _, created, _ = create(api)
    link = created["links"]["self"]

    status, job, _ = call_handler(event_for_url("GET", link))

    assert link == f"https://abc123.execute-api.us-east-1.amazonaws.com/v1api/v1/jobs/{created['job_id']}"
    assert status == 200 and job["job_id"] == created["job_id"]


def test_links_self_on_localstacks_path_style_url(call_handler):
    api_url = "http://127.0.0.1:4566/restapis/abc123/prod/_user_request_"
    event = localstack_event_for_url("POST", f"{api_url}/v1/jobs")
    event["body"] = VALID_BODY

    _, created, _ = call_handler(event)
    status, job, _ = call_handler(localstack_event_for_url("GET", created["links"]["self"]))
    _, spec, _ = call_handler(localstack_event_for_url("GET", f"{api_url}/v1/openapi.json"))

    assert created["links"]["self"] == f"{api_url}/v1/jobs/{created['job_id']}"
    assert status == 200 and job["job_id"] == created["job_id"]
    assert spec["servers"] == [{"url": api_url}]


def succeeded_job(result_expires_at: int) -> Job:
    job = job_rules.new_job("00000000-0000-4000-8000-000000000000", JobRequest("image/png", 1), Settings(), now=0)
    return replace(
        job,
        status=JobStatus.SUCCEEDED,
        result=ResultFile(OutputFormat.PNG, "image/png", width=1, height=1, bytes=1, subject=None, model="u2netp"),
        result_expires_at=result_expires_at,
    )


@pytest.mark.parametrize(
    "seconds_left, status, url_lifetime_s",
    [
        (300.0, "succeeded", 300),
        (1.0, "succeeded", 1),
        (0.999, "expired", None),
        (0.0, "expired", None),
        (-5.0, "expired", None),
    ],
)
def test_a_result_reads_succeeded_only_while_a_working_url_can_be_issued(seconds_left, status, url_lifetime_s):
    job, now = succeeded_job(10_000), 10_000 - seconds_left

    view = public_view(job, now)

    assert view.status == status
    if url_lifetime_s is None:
        assert view.error.code == "result_expired"
    else:
        assert view.error is None
        assert (
            job_rules.result_url_lifetime_s(job, Settings(), now) == url_lifetime_s >= job_rules.SHORTEST_RESULT_URL_S
        )


def test_a_result_with_under_a_second_left_is_expired_not_a_dead_url(api, aws):
    _, created, _ = create(api)
    job_id = created["job_id"]
    aws.store.write(result_key(job_id, "png"), b"\x89PNG result", "image/png")
    succeed(aws, job_id, time.time(), width=1, height=1, size=11)
    # Under a second of the result's TTL left (the stored TTL is whole epoch seconds).
    aws.overwrite(job_id, "result_expires_at", int(time.time()) + 1)

    status, body, _ = api("GET", f"/v1/jobs/{job_id}")

    assert status == 200
    assert body["result"] is None or parse_qs(urlsplit(body["result"]["url"]).query)["X-Amz-Expires"] != ["0"]
    assert (body["status"], body["error"]["code"]) == ("expired", "result_expired")


def test_limits_are_those_the_function_applies(api, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
    settings.cache_clear()

    status, body, _ = api("GET", "/v1/limits")

    assert status == 200
    assert body == service_limits(settings())
    assert body["max_upload_bytes"] == 1000


def test_models_lists_every_model_and_marks_the_deployments_default(api, monkeypatch):
    monkeypatch.setenv("DEFAULT_MODEL", "u2net")
    settings.cache_clear()

    status, body, _ = api("GET", "/v1/models")

    assert status == 200
    assert body == model_catalogue("u2net")
    assert [model["name"] for model in body["models"]] == list(MODELS)
    assert [model["name"] for model in body["models"] if model["default"]] == ["u2net"]
    assert all(model["description"] and model["networks"] for model in body["models"])


def test_a_job_runs_the_model_it_names_and_shows_it(api, aws):
    _, created, _ = create(api, model="modnet")
    job_id, now = created["job_id"], time.time()
    aws.store.write(result_key(job_id, "png"), b"result", "image/png")
    succeed(aws, job_id, now, width=64, height=48, size=6)

    _, body, _ = api("GET", f"/v1/jobs/{job_id}")

    assert aws.jobs.get(job_id, now).model == "modnet"
    assert body["model"] == body["result"]["model"] == "modnet"


def test_a_job_naming_no_model_gets_the_deployments_default(api, aws, monkeypatch):
    monkeypatch.setenv("DEFAULT_MODEL", "u2net")
    settings.cache_clear()

    _, created, _ = create(api)

    assert aws.jobs.get(created["job_id"], time.time()).model == "u2net"
    assert api("GET", f"/v1/jobs/{created['job_id']}")[1]["model"] == "u2net"


@pytest.mark.parametrize("model", ["u2net_human_seg", "", "U2NETP"])
def test_an_unknown_model_is_400_listing_the_valid_ones(api, model):
    status, body, _ = create(api, model=model)

    assert status == 400
    assert body["error"]["code"] == "bad_request"
    assert body["error"]["message"] == f"model must be one of {', '.join(MODELS)}"
    assert body["error"]["details"]["problems"] == [{"field": "model", "problem": f"{model!r} is not a model here"}]
    assert body["error"]["details"]["models"] == list(MODELS)


def test_a_model_that_is_not_a_string_is_400_and_null_names_none(api):
    status, body, _ = create(api, model=7)
    assert status == 400
    assert [problem["field"] for problem in body["error"]["details"]["problems"]] == ["model"]

    assert create(api, model=None)[0] == 201


# --- API keys: ownership, listing, idempotent submits, batches -------------------------------


@pytest.fixture
def api_as(call_handler):
    """Call the handler as another API key holder (or, with None, as a request without a key)."""

    def call(api_key_id, method, path, body=None, headers=None, query=None):
        return call_handler(proxy_event(method, path, body, headers, api_key_id=api_key_id, query=query))

    return call


def test_another_keys_job_is_not_found_for_reading_cancelling_or_listing(api, api_as):
    _, created, _ = create(api)
    job_id = created["job_id"]

    read = api_as("testkey-b", "GET", f"/v1/jobs/{job_id}")
    cancel = api_as("testkey-b", "DELETE", f"/v1/jobs/{job_id}")
    listed = api_as("testkey-b", "GET", "/v1/jobs")

    unknown = api("GET", "/v1/jobs/00000000-0000-4000-8000-000000000000")
    assert (read[0], cancel[0]) == (404, 404) == (unknown[0], 404)
    assert read[1]["error"]["code"] == unknown[1]["error"]["code"] == "not_found"
    assert listed[:2] == (200, {"jobs": [], "next_cursor": None})
    assert api("GET", f"/v1/jobs/{job_id}")[1]["status"] == "awaiting_upload"  # the owner's cancel was refused


def test_a_request_without_a_key_is_refused_when_the_deployment_has_keys(api_as):
    status, body, _ = api_as(None, "POST", "/v1/jobs", {"content_type": "image/jpeg", "content_length": 10})

    assert status == 403
    assert body["error"]["code"] == "forbidden" and "x-api-key" in body["error"]["message"]


def test_without_keys_the_job_id_is_the_capability_and_there_is_no_listing(api, api_as, aws, monkeypatch):
    monkeypatch.setenv("API_AUTH", "none")
    settings.cache_clear()
    _, created, _ = create(api)

    read = api_as(None, "GET", f"/v1/jobs/{created['job_id']}")
    listed = api_as(None, "GET", "/v1/jobs")

    assert read[0] == 200 and read[1]["job_id"] == created["job_id"]
    assert "owner" not in aws.stored_item(created["job_id"])
    assert listed[0] == 404 and "api_auth" in listed[1]["error"]["message"]


def test_listing_pages_through_the_callers_jobs_newest_first(api, api_as, aws):
    created = []
    for _ in range(5):
        created.append(create(api)[1]["job_id"])
        time.sleep(0.002)  # created_at has millisecond resolution
    create_as_b = api_as("testkey-b", "POST", "/v1/jobs", {"content_type": "image/jpeg", "content_length": 10})
    assert create_as_b[0] == 201

    pages, query = [], {"limit": "2"}
    while True:
        status, page, _ = api_as("testkey-a", "GET", "/v1/jobs", query=query)
        assert status == 200
        pages.append([job["job_id"] for job in page["jobs"]])
        if page["next_cursor"] is None:
            break
        query = {"limit": "2", "cursor": page["next_cursor"]}

    assert [job_id for page in pages for job_id in page] == created[::-1]
    assert all(len(page) <= 2 for page in pages)


def test_listing_filters_by_status_and_refuses_bad_parameters(api, api_as, aws):
    _, waiting, _ = create(api)
    _, cancelled, _ = create(api)
    api("DELETE", f"/v1/jobs/{cancelled['job_id']}")

    _, page, _ = api_as("testkey-a", "GET", "/v1/jobs", query={"status": "cancelled"})

    assert [job["job_id"] for job in page["jobs"]] == [cancelled["job_id"]]
    assert page["jobs"][0]["status"] == "cancelled"
    for query, field in [
        ({"status": "done"}, "status"),
        ({"limit": "101"}, "limit"),
        ({"limit": "two"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJvd25lciI6ImsifQ"}, "cursor"),  # {"owner":"k"}: a cursor naming an owner
        ({"sort": "asc"}, "sort"),
    ]:
        status, body, _ = api_as("testkey-a", "GET", "/v1/jobs", query=query)
        assert (status, body["error"]["details"]["field"]) == (400, field), query


def test_a_retried_submit_with_the_same_idempotency_key_returns_the_same_job(api, aws):
    body = {"content_type": "image/jpeg", "content_length": 10, "output": {"format": "webp"}}
    first = api("POST", "/v1/jobs", body, {"Idempotency-Key": "order-42"})
    again = api("POST", "/v1/jobs", body, {"Idempotency-Key": "order-42"})
    other_body = api("POST", "/v1/jobs", {**body, "content_length": 11}, {"Idempotency-Key": "order-42"})
    other_key = api("POST", "/v1/jobs", body, {"Idempotency-Key": "order-43"})

    assert first[0] == again[0] == 201
    assert again[1]["job_id"] == first[1]["job_id"] and again[1]["upload"]["url"]
    assert (other_body[0], other_body[1]["error"]["code"]) == (409, "idempotency_conflict")
    assert other_key[1]["job_id"] != first[1]["job_id"]
    jobs = boto3.resource("dynamodb").Table(aws.table_name).scan()["Items"]
    assert len(jobs) == 2


def test_an_idempotency_key_is_the_callers_own(api, api_as):
    body = {"content_type": "image/jpeg", "content_length": 10}
    mine = api("POST", "/v1/jobs", body, {"Idempotency-Key": "shared-name"})
    theirs = api_as("testkey-b", "POST", "/v1/jobs", body, {"Idempotency-Key": "shared-name"})

    assert mine[0] == theirs[0] == 201 and mine[1]["job_id"] != theirs[1]["job_id"]


def test_a_replay_after_the_upload_answers_the_job_as_it_is_without_an_upload_url(api, aws):
    body = {"content_type": "image/jpeg", "content_length": 10}
    _, first, _ = api("POST", "/v1/jobs", body, {"Idempotency-Key": "k1"})
    start_processing(aws, first["job_id"], time.time())

    status, again, _ = api("POST", "/v1/jobs", body, {"Idempotency-Key": "k1"})

    assert status == 201
    assert (again["job_id"], again["status"], again["upload"]) == (first["job_id"], "processing", None)


def test_a_bad_idempotency_key_is_refused(api):
    body = {"content_type": "image/jpeg", "content_length": 10}
    for key in ["", "x" * 256, "naïve"]:
        status, answer, _ = api("POST", "/v1/jobs", body, {"Idempotency-Key": key})
        assert (status, answer["error"]["details"]["field"]) == (400, "Idempotency-Key"), key


def test_a_batch_creates_every_job_with_its_upload_and_runs_to_done(api, aws):
    items = [{"content_type": "image/jpeg", "content_length": 10 + n, "filename": f"{n}.jpg"} for n in range(3)]

    status, created, _ = api("POST", "/v1/batches", {"jobs": items})

    assert status == 201 and len(created["jobs"]) == 3
    assert created["links"]["self"].endswith(f"/v1/batches/{created['batch_id']}")
    for item, job in zip(items, created["jobs"], strict=True):
        assert job["upload"]["headers"]["Content-Length"] == str(item["content_length"])
        assert aws.jobs.get(job["job_id"], time.time()).batch_id == created["batch_id"]
    _, running, _ = api("GET", f"/v1/batches/{created['batch_id']}")
    assert running["status"] == "running" and running["counts"]["awaiting_upload"] == 3
    first, second, third = (job["job_id"] for job in created["jobs"])
    succeed(aws, first, time.time(), width=1, height=1, size=1)
    api("DELETE", f"/v1/jobs/{second}")
    start_processing(aws, third, time.time())
    aws.jobs.transition(third, JobStatus.PROCESSING, JobStatus.FAILED, time.time())

    _, done, _ = api("GET", f"/v1/batches/{created['batch_id']}")

    assert done["status"] == "done"
    assert {k: v for k, v in done["counts"].items() if v} == {"succeeded": 1, "cancelled": 1, "failed": 1}
    assert [job["job_id"] for job in done["jobs"]] == [first, second, third]


def test_a_batch_with_one_bad_item_creates_no_job_and_names_the_item(api, aws):
    items = [
        {"content_type": "image/jpeg", "content_length": 10},
        {"content_type": "image/gif", "content_length": 10},
        {"content_type": "image/png", "content_length": 10, "output": {"bg_color": "red"}},
        {"content_type": "image/png", "content_length": settings().max_upload_bytes + 1},
    ]

    status, body, _ = api("POST", "/v1/batches", {"jobs": items})

    assert status == 400
    fields = [problem["field"] for problem in body["error"]["details"]["problems"]]
    assert fields == ["jobs.1.content_type", "jobs.2.output.bg_color", "jobs.3.content_length"]
    assert boto3.resource("dynamodb").Table(aws.table_name).scan()["Items"] == []


def test_a_batch_is_bounded_by_max_batch_jobs(api, monkeypatch):
    item = {"content_type": "image/jpeg", "content_length": 10}
    assert api("POST", "/v1/batches", {"jobs": [item] * settings().max_batch_jobs})[0] == 201

    status, body, _ = api("POST", "/v1/batches", {"jobs": [item] * (settings().max_batch_jobs + 1)})

    assert status == 400 and body["error"]["details"]["problems"][0]["field"] == "jobs"


def test_a_retried_batch_returns_the_same_batch_and_jobs(api, aws):
    items = {"jobs": [{"content_type": "image/jpeg", "content_length": 10}] * 2}
    _, first, _ = api("POST", "/v1/batches", items, {"Idempotency-Key": "b1"})
    status, again, _ = api("POST", "/v1/batches", items, {"Idempotency-Key": "b1"})

    assert status == 201 and again["batch_id"] == first["batch_id"]
    assert [job["job_id"] for job in again["jobs"]] == [job["job_id"] for job in first["jobs"]]
    assert len(boto3.resource("dynamodb").Table(aws.table_name).scan()["Items"]) == 2


def test_another_keys_batch_is_not_found(api, api_as):
    _, created, _ = api("POST", "/v1/batches", {"jobs": [{"content_type": "image/jpeg", "content_length": 10}]})

    status, body, _ = api_as("testkey-b", "GET", f"/v1/batches/{created['batch_id']}")

    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "callback_url",
    [
        "http://93.184.216.34/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://user:pass@93.184.216.34/hook",
        "https://93.184.216.34/" + "a" * 2048,
    ],
)
def test_a_callback_url_that_is_not_https_to_a_public_host_is_400_naming_it(api, aws, callback_url):
    status, body, _ = create(api, callback_url=callback_url)

    assert (status, body["error"]["code"]) == (400, "bad_request")
    assert [problem["field"] for problem in body["error"]["details"]["problems"]] == ["callback_url"]
    assert boto3.resource("dynamodb").Table(aws.table_name).scan()["Items"] == []


def test_a_callback_url_to_a_public_address_is_kept_with_the_job(api, aws):
    status, created, _ = create(api, callback_url="https://93.184.216.34/hook")

    assert status == 201
    assert aws.jobs.get(created["job_id"], time.time()).callback_url == "https://93.184.216.34/hook"


def test_a_local_deployment_takes_an_http_callback_url_on_127_0_0_1(api, aws, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    settings.cache_clear()

    status, created, _ = create(api, callback_url="http://127.0.0.1:8080/hook")

    assert status == 201
    assert aws.jobs.get(created["job_id"], time.time()).callback_url == "http://127.0.0.1:8080/hook"


def test_a_batch_item_with_a_private_callback_url_is_named(api, aws):
    items = [
        {"content_type": "image/jpeg", "content_length": 10, "callback_url": "https://93.184.216.34/hook"},
        {"content_type": "image/jpeg", "content_length": 10, "callback_url": "https://10.1.2.3/hook"},
    ]

    status, body, _ = api("POST", "/v1/batches", {"jobs": items})

    assert status == 400
    assert [problem["field"] for problem in body["error"]["details"]["problems"]] == ["jobs.1.callback_url"]
    assert boto3.resource("dynamodb").Table(aws.table_name).scan()["Items"] == []


@pytest.fixture
def operator_aws(aws, notifications):
    """Every queue GET /v1/stats reads, and an API key in a usage plan named as ADMIN_USAGE_PLANS says."""
    boto3.client("sqs").create_queue(QueueName="cutout-inference-dlq")
    gateway = boto3.client("apigateway")
    admin_plan = gateway.create_usage_plan(name="admin")["id"]
    free_plan = gateway.create_usage_plan(name="free")["id"]
    keys = {}
    for plan, plan_id in (("admin", admin_plan), ("free", free_plan)):
        key_id = gateway.create_api_key(name=f"{plan}-key", enabled=True)["id"]
        gateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
        keys[plan] = key_id
    return keys


def test_stats_answer_an_admin_key_with_queues_and_counts_and_refuse_other_keys(
    operator_aws, call_handler, lambda_context
):
    _, created, _ = call_handler(proxy_event("POST", "/v1/jobs", {"content_type": "image/jpeg", "content_length": 9}))
    stored = boto3.resource("dynamodb").Table(settings().table_name).get_item(Key={"job_id": created["job_id"]})
    stream_handler(stream_event(inserted(stored["Item"])), lambda_context)
    boto3.client("sqs").send_message(QueueUrl=settings().queue_url, MessageBody="{}")

    status, stats, _ = call_handler(proxy_event("GET", "/v1/stats", api_key_id=operator_aws["admin"]))
    refused, error, _ = call_handler(proxy_event("GET", "/v1/stats", api_key_id=operator_aws["free"]))

    assert status == 200
    assert stats["queues"]["inference"] == {"waiting": 1, "in_flight": 0, "oldest_age_s": None}
    assert set(stats["queues"]) == {"inference", "inference_dead_letters", "webhooks", "notification_dead_letters"}
    assert stats["jobs"]["last_hour"]["created"] == 1 and stats["jobs"]["last_day"]["created"] == 1
    assert stats["jobs"]["last_hour"]["failed_by_code"] == {} and stats["bucket_s"] == 300
    assert (refused, error["error"]["code"]) == (403, "forbidden")
