"""CloudFormation custom resources (AWS::CloudFormation::CustomResource and Custom::*).

The free LocalStack build skips them ("deployed as a fallback"), so CDK's
Custom::S3BucketNotifications would leave the bucket without notifications. This provider does
what CloudFormation does: it invokes the ServiceToken Lambda with the standard event and waits for
the handler's PUT to the ResponseURL, which is a route on LocalStack's own gateway.
"""

import json
import logging
import threading
import uuid

from botocore.config import Config
from localstack import config
from localstack.aws.connect import connect_to
from localstack.http import Request, Response, route
from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)
from localstack.services.edge import ROUTER
from localstack.utils.objects import singleton_factory

LOG = logging.getLogger(__name__)

RESPONSE_PATH = "/_cutout/cloudformation-custom-resource-response"
# The engine stores the model as the resource's properties; these keys are ours, not the template's.
PHYSICAL_ID = "PhysicalResourceId"
DATA_KEYS = "CutoutResponseDataKeys"
# A handler has up to the Lambda maximum to answer, as on AWS (where the wait is an hour).
LAMBDA_MAX_SECONDS = 900


class CustomResourceProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::CloudFormation::CustomResource"

    def __init__(self):
        self.factory: type[ResourceProvider] | None = None

    def load(self):
        self.factory = CustomResourceProvider


class ResponseMailbox:
    """Holds the bodies PUT to ResponseURLs until the waiting provider takes them."""

    def __init__(self):
        self._responses: dict[str, dict] = {}
        self._arrived: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def open(self, request_id: str) -> None:
        with self._lock:
            self._arrived[request_id] = threading.Event()

    @route(f"{RESPONSE_PATH}/<request_id>", methods=["PUT"])
    def receive(self, request: Request, request_id: str) -> Response:
        with self._lock:
            arrived = self._arrived.get(request_id)
            if arrived is None:
                return Response(status=404)
            self._responses[request_id] = json.loads(request.get_data() or b"{}")
        arrived.set()
        return Response(status=200)

    def wait(self, request_id: str, timeout: float) -> dict | None:
        arrived = self._arrived[request_id]
        arrived.wait(timeout)
        with self._lock:
            del self._arrived[request_id]
            return self._responses.pop(request_id, None)


@singleton_factory
def mailbox() -> ResponseMailbox:
    box = ResponseMailbox()
    ROUTER.add(box)
    return box


def stringify(value):
    """CloudFormation hands custom resources every scalar property as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return {key: stringify(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringify(item) for item in value]
    return value


def _error_summary(payload: bytes) -> str:
    try:
        error = json.loads(payload)
        return f"{error['errorType']}: {error['errorMessage']}"
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace")


def template_properties(model: dict) -> dict:
    internal = {PHYSICAL_ID, DATA_KEYS, *model.get(DATA_KEYS, [])}
    return {key: value for key, value in model.items() if key not in internal}


class CustomResourceProvider(ResourceProvider[dict]):
    SCHEMA = {
        "typeName": "AWS::CloudFormation::CustomResource",
        "primaryIdentifier": [f"/properties/{PHYSICAL_ID}"],
        "createOnlyProperties": ["/properties/ServiceToken"],
    }

    def create(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        properties = template_properties(request.desired_state)
        return self._send(request, "Create", properties, physical_id=None, old_properties=None)

    def update(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        previous = request.previous_state or {}
        return self._send(
            request,
            "Update",
            template_properties(request.desired_state),
            physical_id=previous.get(PHYSICAL_ID),
            old_properties=template_properties(previous),
        )

    def delete(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        model = request.desired_state
        return self._send(
            request, "Delete", template_properties(model), physical_id=model.get(PHYSICAL_ID), old_properties=None
        )

    def _send(
        self,
        request: ResourceRequest[dict],
        request_type: str,
        properties: dict,
        physical_id: str | None,
        old_properties: dict | None,
    ) -> ProgressEvent[dict]:
        service_token = properties.get("ServiceToken", "")
        if ":lambda:" not in service_token:
            return self._failed(f"ServiceToken must be a Lambda function ARN, got {service_token!r}")
        request_id = str(uuid.uuid4())
        event = {
            "RequestType": request_type,
            "ResponseURL": f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}{RESPONSE_PATH}/{request_id}",
            "StackId": request.stack_id,
            "RequestId": request_id,
            "ResourceType": request.resource_type,
            "LogicalResourceId": request.logical_resource_id,
            "ServiceToken": service_token,
            "ResourceProperties": stringify(properties),
        }
        if physical_id:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = stringify(old_properties)

        mailbox().open(request_id)
        lambda_client = connect_to(
            aws_access_key_id=request.account_id,
            region_name=request.region_name,
            config=Config(read_timeout=LAMBDA_MAX_SECONDS + 5, retries={"max_attempts": 0}),
        ).lambda_
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=service_token)
        invocation = lambda_client.invoke(FunctionName=service_token, Payload=json.dumps(event).encode())
        function_error = invocation.get("FunctionError")
        # A handler that failed without answering will not answer: don't wait for it.
        response = mailbox().wait(request_id, timeout=1 if function_error else LAMBDA_MAX_SECONDS)
        if response is None:
            detail = _error_summary(invocation["Payload"].read()) if function_error else "it did not answer"
            return self._failed(f"{request_type} of {request.logical_resource_id} failed: {detail}")
        if response.get("Status") != "SUCCESS":
            return self._failed(response.get("Reason") or f"{request_type} of {request.logical_resource_id} failed")

        data = response.get("Data") or {}
        model = {
            **properties,
            **data,
            DATA_KEYS: list(data),
            PHYSICAL_ID: response.get("PhysicalResourceId") or physical_id or request_id,
        }
        LOG.debug("Custom resource %s: %s succeeded", request.logical_resource_id, request_type)
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    @staticmethod
    def _failed(message: str) -> ProgressEvent[dict]:
        LOG.warning("Custom resource failed: %s", message)
        return ProgressEvent(status=OperationStatus.FAILED, resource_model={}, message=message)
