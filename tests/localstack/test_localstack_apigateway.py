"""API Gateway REST (v1) proxy integration in front of a function run by the Cutout executor."""

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


def test_rest_api_proxy_reaches_the_function_and_returns_its_response(aws, localstack):
    apigateway = aws("apigateway")
    name = create_function(aws, {"handler.py": ECHO_HANDLER})
    function_arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    api_id = apigateway.create_rest_api(name=unique("api"))["id"]
    root_id = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
    proxy_id = apigateway.create_resource(restApiId=api_id, parentId=root_id, pathPart="{proxy+}")["id"]
    apigateway.put_method(restApiId=api_id, resourceId=proxy_id, httpMethod="ANY", authorizationType="NONE")
    apigateway.put_integration(
        restApiId=api_id,
        resourceId=proxy_id,
        httpMethod="ANY",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}/invocations",
    )
    apigateway.create_deployment(restApiId=api_id, stageName="v1")

    # The path form of the URL: *.execute-api.localhost.localstack.cloud does not resolve offline.
    response = requests.post(f"{localstack}/restapis/{api_id}/v1/_user_request_/jobs/abc", data="photo", timeout=30)

    assert response.status_code == 201
    assert response.headers["X-Cutout"] == "yes"
    assert json.loads(response.text) == {"path": "/jobs/abc", "method": "POST", "body": "photo"}
