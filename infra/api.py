"""The public REST API: API Gateway (v1, which LocalStack's free build has) in front of the api function.

Every route is its own resource and method, so API Gateway throttles each on its own: creating a
job (a table write and a presigned upload, then normalize and inference work) gets a lower limit
than reading one. Requests to any other path never reach the function.

With ``api_auth`` api_key every method but the public ones requires an API key, and each usage plan
of the settings (throttle and daily quota per key) is bound to the stage; a key belongs to a plan
(``cutout keys``). The CORS preflights never require one: a browser sends them without headers of
its own.
"""

import json
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cutout.browser import ANSWER_HEADERS, CorsPolicy
from cutout.clients import ApiAuth
from cutout.errors import ErrorCode
from infra.settings import StackSettings, UsagePlan
from infra.wiring import ApiTrigger, Route

STAGE = "prod"
GATEWAY_MESSAGE = "$context.error.messageString"  # API Gateway's own words, as a quoted JSON string


@dataclass(frozen=True)
class GatewayError:
    """An error API Gateway answers itself, in the API's error body."""

    construct_id: str
    response_type: apigateway.ResponseType
    code: ErrorCode
    message: str = GATEWAY_MESSAGE  # a JSON string, or the gateway's message
    status_code: str | None = None  # None keeps API Gateway's own status


GATEWAY_ERRORS = (
    GatewayError("Throttled", apigateway.ResponseType.THROTTLED, ErrorCode.TOO_MANY_REQUESTS),
    # API Gateway calls an unknown route a missing token (403); the function answers it 404.
    GatewayError(
        "UnknownRoute",
        apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        ErrorCode.NOT_FOUND,
        json.dumps("no such route"),
        "404",
    ),
    # API Gateway answers a missing key and an unknown (or disabled) one alike: INVALID_API_KEY, 403.
    GatewayError(
        "InvalidApiKey",
        apigateway.ResponseType.INVALID_API_KEY,
        ErrorCode.FORBIDDEN,
        json.dumps("a valid API key is required: send it in the x-api-key header"),
        "403",
    ),
    GatewayError(
        "QuotaExceeded",
        apigateway.ResponseType.QUOTA_EXCEEDED,
        ErrorCode.TOO_MANY_REQUESTS,
        json.dumps("this API key's daily quota is used up: it renews at midnight UTC"),
        "429",
    ),
    GatewayError("RequestTooLarge", apigateway.ResponseType.REQUEST_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE),
    GatewayError("Default4xx", apigateway.ResponseType.DEFAULT_4_XX, ErrorCode.BAD_REQUEST),
    GatewayError("Default5xx", apigateway.ResponseType.DEFAULT_5_XX, ErrorCode.INTERNAL_ERROR),
)


def method_key(route: Route) -> str:
    """How a stage's method options name a route's method: resource path, then verb."""
    return f"{route.path}/{route.method}"


class CutoutApi(Construct):
    def __init__(
        self, scope: Construct, id: str, settings: StackSettings, *, function: lambda_.IFunction, trigger: ApiTrigger
    ):
        super().__init__(scope, id)
        cors = CorsPolicy(tuple(settings.allowed_origins))
        costly = apigateway.MethodDeploymentOptions(
            throttling_rate_limit=settings.create_job_throttle_rate,
            throttling_burst_limit=settings.create_job_throttle_burst,
        )
        self.rest_api = apigateway.RestApi(
            self,
            "Rest",
            # Its metrics are dimensioned by name: two stacks in one account must not share them.
            rest_api_name=settings.stack_name,
            description="Cutout: background removal jobs",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            api_key_source_type=apigateway.ApiKeySourceType.HEADER,  # x-api-key
            # An account-wide logging role is an account decision, not this stack's.
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=settings.api_throttle_rate,
                throttling_burst_limit=settings.api_throttle_burst,
                method_options={method_key(route): costly for route in trigger.routes if route.costly},
            ),
            default_cors_preflight_options=apigateway.CorsOptions(
                allow_origins=list(cors.origins),
                allow_methods=sorted({route.method for route in trigger.routes}),
                allow_headers=list(cors.allow_headers),
                max_age=Duration.seconds(cors.max_age_s),
            ),
        )
        # The stack's own ApiUrl output replaces the one RestApi adds under a generated name.
        self.rest_api.node.try_remove_child("Endpoint")
        integration = apigateway.LambdaIntegration(function, proxy=True, allow_test_invoke=False)
        keys_required = settings.service.api_auth == ApiAuth.API_KEY
        # Per method, not as the API's default method options, which the preflights would inherit.
        for route in trigger.routes:
            self.rest_api.root.resource_for_path(route.path).add_method(
                route.method, integration, api_key_required=keys_required and not route.public
            )
        self.usage_plans: dict[str, apigateway.UsagePlan] = {}
        if keys_required:
            for name, plan in settings.usage_plans.items():
                self.usage_plans[name] = self._usage_plan(name, plan)
        self._answer_gateway_errors(cors)

    def _usage_plan(self, name: str, plan: UsagePlan) -> apigateway.UsagePlan:
        """One plan, named as in the settings; its limits apply to each key in it, not to the plan."""
        return self.rest_api.add_usage_plan(
            f"Plan-{name}",
            name=name,
            description=f"Cutout API keys of the {name} plan",
            throttle=apigateway.ThrottleSettings(rate_limit=plan.rate, burst_limit=plan.burst),
            # Quota periods are UTC days.
            quota=apigateway.QuotaSettings(limit=plan.daily_quota, period=apigateway.Period.DAY),
            api_stages=[apigateway.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )

    def _answer_gateway_errors(self, cors: CorsPolicy) -> None:
        """Errors API Gateway answers itself carry the API's error body, its answer headers, and
        CORS headers (without them a browser reports the error as a network failure)."""
        for error in GATEWAY_ERRORS:
            self.rest_api.add_gateway_response(
                error.construct_id,
                type=error.response_type,
                status_code=error.status_code,
                response_headers=gateway_response_headers(cors),
                templates={"application/json": error_template(error)},
            )


def error_template(error: GatewayError) -> str:
    """The API's error body; API Gateway substitutes $context variables in it, nothing more."""
    return f'{{"error": {{"code": {json.dumps(error.code.value)}, "message": {error.message}}}}}'


def gateway_response_headers(cors: CorsPolicy) -> dict[str, str]:
    """A gateway response's headers are static values or request parameters: its template is no
    VTL and cannot choose among origins. So one allowed origin (or any) is answered as it is, and
    several by echoing the caller's Origin: these responses carry no data, only API Gateway's error."""
    headers = {name: f"'{value}'" for name, value in ANSWER_HEADERS.items()}
    if len(cors.origins) == 1:
        return {**headers, "Access-Control-Allow-Origin": f"'{cors.origins[0]}'"}
    return {**headers, "Access-Control-Allow-Origin": "method.request.header.Origin", "Vary": "'Origin'"}
