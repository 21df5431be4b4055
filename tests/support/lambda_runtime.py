"""What the Lambda runtime hands a handler: API Gateway REST (v1) proxy events and a context."""

import json
import uuid

# The API key id API Gateway puts in the request context of a request it let through.
TEST_API_KEY_ID = "testkey-a"


def proxy_event(
    method: str,
    path: str,
    body=None,
    headers: dict | None = None,
    stage: str = "v1api",
    api_key_id: str | None = TEST_API_KEY_ID,
    query: dict[str, str] | None = None,
) -> dict:
    headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "X-Forwarded-Proto": "https",
        "Content-Type": "application/json",
        **(headers or {}),
    }
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "domainName": headers["Host"],
            "requestId": str(uuid.uuid4()),
            "accountId": "123456789012",
            "apiId": "abc123",
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": 0,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest", "apiKeyId": api_key_id},
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


class LambdaContext:
    function_name = "cutout-test"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cutout-test"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000
