"""API keys: with api_auth api_key every route but the public ones needs a key (the preflights
never), and each usage plan of the settings is bound to the stage with its throttle and daily
quota; with api_auth none, neither."""

import pytest

from infra.api import STAGE
from infra.wiring import API
from tests.support.stack_synthesis import CDK_CONTEXT, Synthesized


@pytest.fixture(scope="module")
def keyless_stack() -> Synthesized:
    return Synthesized({"api_auth": "none"})


def test_every_route_but_the_public_ones_requires_a_key(any_stack):
    methods = any_stack.methods_by_route()
    public = {(route.method, route.path) for route in API.trigger.routes if route.public}
    assert public == {("GET", "/v1/health")}
    for route in API.trigger.routes:
        method = methods[(route.method, route.path)]
        assert method.get("ApiKeyRequired", False) is (not route.public), route


def test_preflights_never_require_a_key(any_stack):
    preflights = [m for (verb, _), m in any_stack.methods_by_route().items() if verb == "OPTIONS"]
    assert len(preflights) >= len({route.path for route in API.trigger.routes})
    for preflight in preflights:
        assert preflight.get("ApiKeyRequired", False) is False


def test_the_key_is_read_from_the_x_api_key_header(any_stack):
    _, rest_api = any_stack.only("AWS::ApiGateway::RestApi")
    assert rest_api["Properties"]["ApiKeySourceType"] == "HEADER"


def test_each_usage_plan_of_cdk_json_is_bound_to_the_stage_with_its_limits(any_stack):
    plans = {
        p["Properties"]["UsagePlanName"]: p["Properties"]
        for p in any_stack.of_type("AWS::ApiGateway::UsagePlan").values()
    }
    assert list(plans) == list(CDK_CONTEXT["usage_plans"]) == ["free", "standard", "admin"]
    rest_key, _ = any_stack.only("AWS::ApiGateway::RestApi")
    stage_key, stage = any_stack.only("AWS::ApiGateway::Stage")
    assert stage["Properties"]["StageName"] == STAGE
    for name, limits in CDK_CONTEXT["usage_plans"].items():
        plan = plans[name]
        assert plan["Throttle"] == {"RateLimit": limits["rate"], "BurstLimit": limits["burst"]}
        assert plan["Quota"] == {"Limit": limits["daily_quota"], "Period": "DAY"}
        assert [(s["ApiId"], s["Stage"]) for s in plan["ApiStages"]] == [({"Ref": rest_key}, {"Ref": stage_key})]
    assert CDK_CONTEXT["usage_plans"]["free"] == {"rate": 2, "burst": 5, "daily_quota": 500}
    assert CDK_CONTEXT["usage_plans"]["standard"] == {"rate": 20, "burst": 40, "daily_quota": 20000}
    assert CDK_CONTEXT["usage_plans"]["admin"] == {"rate": 5, "burst": 10, "daily_quota": 5000, "admin": True}


def test_the_stack_creates_no_key_itself(any_stack):
    """Keys are made with `cutout keys create` (and by `make up`): a key in a template is a secret in it."""
    assert any_stack.of_type("AWS::ApiGateway::ApiKey") == {}
    assert any_stack.of_type("AWS::ApiGateway::UsagePlanKey") == {}


def test_without_keys_no_route_requires_one_and_there_is_no_plan(keyless_stack):
    assert keyless_stack.settings.service.api_auth == "none"
    for route, method in keyless_stack.methods_by_route().items():
        assert method.get("ApiKeyRequired", False) is False, route
    assert keyless_stack.of_type("AWS::ApiGateway::UsagePlan") == {}
    _, function = keyless_stack.function(API.name)
    assert function["Properties"]["Environment"]["Variables"]["API_AUTH"] == "none"
