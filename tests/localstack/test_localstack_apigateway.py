"""API Gateway REST (v1) proxy integration in front of a function run by the Cutout executor, and
the API keys it checks (usage plans bound to the stage; their throttles and quotas it does not apply)."""

import json

import requests

from tests.support.localstack_calls import create_function, unique

ECHO_HANDLER = """
import json

def handler(event, context):
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-Cutout": "yes"},
        "body": json.dumps({"path": event["path"], "method": event["httpMethod"], "body": event["body"]}),
    }
"""


def echo_api(aws, api_key_required: bool = False) -> str:
    """A REST API whose every path reaches the echo function, deployed to stage v1."""
    apigateway = aws("apigateway")
    name = create_function(aws, {"handler.py": ECHO_HANDLER})
    function_arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    api_id = apigateway.create_rest_api(name=unique("api"), apiKeySource="HEADER")["id"]
    root_id = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    proxy_id = apigateway.create_resource(restApiId=api_id, parentId=root_id, pathPart="{proxy+}")["id"]
    apigateway.put_method(
        restApiId=api_id,
        resourceId=proxy_id,
        httpMethod="ANY",
        authorizationType="NONE",
        apiKeyRequired=api_key_required,
    )
    apigateway.put_integration(
        restApiId=api_id,
        resourceId=proxy_id,
        httpMethod="ANY",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}/invocations",
    )
    apigateway.create_deployment(restApiId=api_id, stageName="v1")
    return api_id


def test_rest_api_proxy_reaches_the_function_and_returns_its_response(aws, localstack):
    api_id = echo_api(aws)

    # The path form of the URL: *.execute-api.localhost.localstack.cloud does not resolve offline.
    response = requests.post(f"{localstack}/restapis/{api_id}/v1/_user_request_/jobs/abc", data="photo", timeout=30)

    assert response.status_code == 201
    assert response.headers["X-Cutout"] == "yes"
    assert json.loads(response.text) == {"path": "/jobs/abc", "method": "POST", "body": "photo"}


def test_a_method_that_requires_a_key_takes_only_a_key_of_a_plan_bound_to_its_stage(aws, localstack):
    """As on AWS, a missing key, an unknown one and one outside the stage's plans are all refused
    as INVALID_API_KEY (403, ForbiddenException)."""
    apigateway = aws("apigateway")
    api_id = echo_api(aws, api_key_required=True)
    apigateway.put_gateway_response(
        restApiId=api_id,
        responseType="INVALID_API_KEY",
        statusCode="403",
        responseTemplates={"application/json": '{"error": {"code": "forbidden"}}'},
    )
    apigateway.create_deployment(restApiId=api_id, stageName="v1")
    plan = apigateway.create_usage_plan(
        name=unique("plan"),
        apiStages=[{"apiId": api_id, "stage": "v1"}],
        throttle={"rateLimit": 1, "burstLimit": 1},
        quota={"limit": 1, "period": "DAY"},
    )
    key = apigateway.create_api_key(name=unique("key"), enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    outside = apigateway.create_api_key(name=unique("key"), enabled=True)  # in no plan
    url = f"{localstack}/restapis/{api_id}/v1/_user_request_/jobs"

    for headers in ({}, {"x-api-key": "not-a-key"}, {"x-api-key": outside["value"]}):
        refused = requests.post(url, data="photo", headers=headers, timeout=30)
        assert refused.status_code == 403, headers
        assert refused.headers["x-amzn-ErrorType"] == "ForbiddenException"
    # A quota of one request a day and a throttle of one a second: LocalStack applies neither.
    for _ in range(3):
        allowed = requests.post(url, data="photo", headers={"x-api-key": key["value"]}, timeout=30)
        assert allowed.status_code == 201, allowed.text
