"""API key management (cutout_cli.keys and `cutout keys`) against moto's API Gateway: a REST API
with a prod stage and the usage plans bound to it, as the stack deploys them."""

import boto3
import pytest
from moto import mock_aws

from cutout_cli.keys import (
    ApiKey,
    UnknownKey,
    UnknownPlan,
    create_key,
    list_keys,
    rest_api_id_of,
    revoke_key,
    usage_plans,
)
from cutout_cli.main import main

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("apigateway", region_name=REGION)


def deployed_api(client, plans=("free", "pro")) -> str:
    """A REST API with a prod stage and these usage plans bound to it; its id."""
    api_id = client.create_rest_api(name="cutout")["id"]
    root_id = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root_id, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root_id, httpMethod="GET", type="MOCK")
    client.create_deployment(restApiId=api_id, stageName="prod")
    for plan in plans:
        client.create_usage_plan(
            name=plan,
            apiStages=[{"apiId": api_id, "stage": "prod"}],
            throttle={"rateLimit": 5, "burstLimit": 10},
            quota={"limit": 1000, "period": "DAY"},
        )
    return api_id


def invoke_url(api_id: str) -> str:
    return f"https://{api_id}.execute-api.{REGION}.amazonaws.com/prod"


@pytest.mark.parametrize(
    "url",
    [
        "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod",
        "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod/",
        "http://127.0.0.1:4566/restapis/abc123defg/prod/_user_request_",
        "http://localhost:4566/restapis/abc123defg/prod/_user_request_/",
    ],
)
def test_rest_api_id_from_aws_and_localstack_invoke_urls(url):
    assert rest_api_id_of(url) == "abc123defg"


@pytest.mark.parametrize("url", ["https://example.com/v1", "http://127.0.0.1:4566/restapis"])
def test_a_url_that_is_not_an_invoke_url_is_refused_saying_what_one_looks_like(url):
    with pytest.raises(ValueError, match="execute-api"):
        rest_api_id_of(url)


def test_usage_plans_are_those_bound_to_the_api(aws):
    api_id = deployed_api(aws)
    deployed_api(aws, plans=("other-api-plan",))
    assert sorted(usage_plans(aws, api_id)) == ["free", "pro"]


def test_a_created_key_is_listed_with_its_plan_then_revoked_and_gone(aws):
    api_id = deployed_api(aws)
    created = create_key(aws, api_id, "pro", name="ci")
    assert created.value and created.enabled and created.plan == "pro" and created.name == "ci"
    assert created.created_at

    listed = list_keys(aws, api_id)
    assert listed == [ApiKey(created.id, "ci", "pro", True, created.created_at)]
    assert listed[0].value is None

    revoke_key(aws, api_id, created.id)
    assert list_keys(aws, api_id) == []
    assert created.id not in {key["id"] for key in aws.get_api_keys()["items"]}


def test_keys_of_another_api_are_not_listed_nor_revocable(aws):
    api_id = deployed_api(aws)
    other_id = deployed_api(aws, plans=("elsewhere",))
    foreign = create_key(aws, other_id, "elsewhere")
    assert list_keys(aws, api_id) == []
    with pytest.raises(UnknownKey):
        revoke_key(aws, api_id, foreign.id)
    assert [key.id for key in list_keys(aws, other_id)] == [foreign.id]


def test_an_unknown_plan_is_refused_naming_the_plans_there_are(aws):
    api_id = deployed_api(aws)
    with pytest.raises(UnknownPlan, match="'gold'.*free, pro"):
        create_key(aws, api_id, "gold")
    assert aws.get_api_keys()["items"] == []


def test_an_unknown_key_id_is_refused_clearly(aws):
    api_id = deployed_api(aws)
    with pytest.raises(UnknownKey, match="no API key 'nope'.*cutout keys list"):
        revoke_key(aws, api_id, "nope")


def test_keys_commands_create_list_revoke(aws, capsys):
    api_id = deployed_api(aws)
    api = ["--api", invoke_url(api_id)]

    assert main(["keys", "create", "--plan", "free", "--name", "alice", *api]) == 0
    created = capsys.readouterr().out
    [key] = list_keys(aws, api_id)
    value = aws.get_api_key(apiKey=key.id, includeValue=True)["value"]
    assert value in created and key.id in created

    assert main(["keys", "list", *api]) == 0
    listing = capsys.readouterr().out
    assert key.id in listing and "alice" in listing and "free" in listing
    assert value not in listing

    assert main(["keys", "revoke", key.id, *api]) == 0
    assert key.id in capsys.readouterr().out
    assert list_keys(aws, api_id) == []


def test_keys_list_with_no_keys_says_so(aws, capsys):
    api_id = deployed_api(aws)
    assert main(["keys", "list", "--api", invoke_url(api_id)]) == 0
    assert "no API keys" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["keys", "create", "--plan", "gold"], "no usage plan 'gold'"),
        (["keys", "revoke", "nope"], "no API key 'nope'"),
    ],
)
def test_keys_commands_report_unknown_plans_and_keys_with_exit_1(aws, capsys, argv, expected):
    api_id = deployed_api(aws)
    assert main([*argv, "--api", invoke_url(api_id)]) == 1
    assert expected in capsys.readouterr().err


def test_keys_commands_need_an_api_gateway_url(aws, capsys):
    assert main(["keys", "list", "--api", "http://127.0.0.1:1"]) == 1
    assert "not an API Gateway invoke URL" in capsys.readouterr().err
