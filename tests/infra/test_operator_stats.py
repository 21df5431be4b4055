"""What GET /v1/stats reads: the queues' attributes, CloudWatch's metrics and a key's usage plans,
each granted to the API function alone, and the counters' table; and which usage plans' keys may read it."""

import json

import pytest

from infra.wiring import API, FUNCTIONS, Table
from tests.support.stack_synthesis import CDK_CONTEXT, USAGE_PLANS_ARN, Synthesized, arn_of

# Plans of a `-c usage_plans=...` that marks none admin.
PLANS_WITHOUT_ADMIN = {
    "free": {"rate": 2, "burst": 5, "daily_quota": 500},
    "standard": CDK_CONTEXT["usage_plans"]["standard"],
}


@pytest.fixture(scope="module")
def no_admin_stack() -> Synthesized:
    return Synthesized({"usage_plans": json.dumps(PLANS_WITHOUT_ADMIN)})


def test_only_the_api_reads_operator_stats():
    assert [w.name for w in FUNCTIONS if w.reads_operator_stats] == [API.name]
    assert API.other_tables[Table.STATS] == ("dynamodb:BatchGetItem",)


def test_the_api_reads_the_attributes_of_exactly_the_watched_queues(any_stack):
    queue_key, dead_letters_key = any_stack.queue_keys()
    webhooks_key, notification_dead_letters_key = any_stack.notification_queue_keys()
    api_role = any_stack.role_of(API.name)
    watched = {resource for role, resource in any_stack.holders_of("sqs:GetQueueAttributes") if role == api_role}
    assert watched == {
        arn_of(key) for key in (queue_key, dead_letters_key, webhooks_key, notification_dead_letters_key)
    }
    # Not the deadline queue: the API neither sends to it nor watches it.
    assert arn_of(any_stack.deadline_queue_key()) not in watched


def test_only_the_api_reads_metrics_on_any_resource_since_they_have_no_other(any_stack):
    assert any_stack.holders_of("cloudwatch:GetMetricStatistics") == {(any_stack.role_of(API.name), '"*"')}


def test_only_the_api_lists_usage_plans_and_nothing_else_of_api_gateway(any_stack):
    assert any_stack.holders_of("apigateway:GET") == {
        (any_stack.role_of(API.name), json.dumps(USAGE_PLANS_ARN, sort_keys=True))
    }
    for action in ("apigateway:POST", "apigateway:PATCH", "apigateway:PUT", "apigateway:DELETE"):
        assert any_stack.holders_of(action) == set(), action


def test_every_function_knows_the_admin_plans_of_cdk_json(any_stack):
    admin = [name for name, plan in CDK_CONTEXT["usage_plans"].items() if plan.get("admin") is True]
    assert admin == ["admin"]
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        assert function["Properties"]["Environment"]["Variables"]["ADMIN_USAGE_PLANS"] == ",".join(admin), wiring.name


def test_without_an_admin_plan_no_key_may_read_the_stats(no_admin_stack):
    assert list(no_admin_stack.settings.usage_plans) == list(PLANS_WITHOUT_ADMIN)
    for wiring in FUNCTIONS:
        _, function = no_admin_stack.function(wiring.name)
        assert function["Properties"]["Environment"]["Variables"]["ADMIN_USAGE_PLANS"] == "", wiring.name
