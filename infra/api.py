"""The public REST API: API Gateway (v1, which LocalStack's free build has) in front of the api function.

Every route is its own resource and method, so API Gateway throttles each on its own: creating a
job (a table write and a presigned upload, then normalize and inference work) gets a lower limit
than reading one. Requests to any other path never reach the function.
"""

import json

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from cutout.errors import ErrorCode

from infra.settings import StackSettings
from infra.wiring import ApiTrigger, Route

STAGE = "prod"
PREFLIGHT_MAX_AGE = Duration.minutes(10)


def method_key(route: Route) -> str:
    """How a stage's method options name a route's method: resource path, then verb."""
    return f"{route.path}/{route.method}"


class CutoutApi(Construct):
    def __init__(self, scope: Construct, id: str, settings: StackSettings, *, function: lambda_.IFunction, trigger: ApiTrigger):
        super().__init__(scope, id)
        costly = apigateway.MethodDeploymentOptions(
            throttling_rate_limit=settings.create_job_throttle_rate,
            throttling_burst_limit=settings.create_job_throttle_burst,
        )
        self.rest_api = apigateway.RestApi(
            self,
            "Rest",
            description="Cutout: background removal jobs",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # An account-wide logging role is an account decision, not this stack's.
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=settings.api_throttle_rate,
                throttling_burst_limit=settings.api_throttle_burst,
                method_options={method_key(route): costly for route in trigger.routes if route.costly},
            ),
            default_cors_preflight_options=apigateway.CorsOptions(
                allow_origins=settings.allowed_origins,
                allow_methods=sorted({route.method for route in trigger.routes}),
                allow_headers=["Content-Type"],
                max_age=PREFLIGHT_MAX_AGE,
            ),
        )
        # The stack's own ApiUrl output replaces the one RestApi adds under a generated name.
        self.rest_api.node.try_remove_child("Endpoint")
        integration = apigateway.LambdaIntegration(function, proxy=True, allow_test_invoke=False)
        for route in trigger.routes:
            self.rest_api.root.resource_for_path(route.path).add_method(route.method, integration)
        self._answer_gateway_errors(settings.allowed_origins[0])

    def _answer_gateway_errors(self, origin: str) -> None:
        """Errors API Gateway answers itself (throttled, unknown route) carry CORS headers, or a
        browser reports them as network failures; an unknown route is a 404 like the function's."""
        cors = {"Access-Control-Allow-Origin": f"'{origin}'"}
        self.rest_api.add_gateway_response(
            "UnknownRoute",
            type=apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
            status_code="404",
            response_headers=cors,
            templates={
                "application/json": json.dumps({"error": {"code": ErrorCode.NOT_FOUND.value, "message": "no such route"}})
            },
        )
        for name, response_type in (("Default4xx", apigateway.ResponseType.DEFAULT_4_XX), ("Default5xx", apigateway.ResponseType.DEFAULT_5_XX)):
            self.rest_api.add_gateway_response(name, type=response_type, response_headers=cors)
