"""API keys of a Cutout deployment: create one in a usage plan, list them, revoke one.

A key is an API Gateway API key that belongs to one of the usage plans bound to the deployment's
REST API (the plans of cdk.json "usage_plans", each named as there). One definition used by
`cutout keys` and by `make up` (which creates the local stack's key).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import boto3


class NotAnInvokeUrl(ValueError):
    pass


class UnknownPlan(LookupError):
    pass


class UnknownKey(LookupError):
    pass


@dataclass(frozen=True)
class ApiKey:
    """value: the secret the client sends as x-api-key; API Gateway shows it at creation, here, and
    the listing leaves it out so that `cutout keys list` never prints a secret."""

    id: str
    name: str
    plan: str
    enabled: bool
    created_at: str
    value: str | None = None


def rest_api_id_of(api_url: str) -> str:
    """The REST API id in an invoke URL: https://<id>.execute-api.<region>.amazonaws.com/prod on AWS,
    http://host:port/restapis/<id>/prod/_user_request_ on LocalStack."""
    parts = urlsplit(api_url)
    host = parts.hostname or ""
    label, _, rest = host.partition(".")
    if label and rest.startswith("execute-api."):
        return label
    segments = [segment for segment in parts.path.split("/") if segment]
    if "restapis" in segments[:-1]:
        return segments[segments.index("restapis") + 1]
    raise NotAnInvokeUrl(
        f"{api_url} is not an API Gateway invoke URL"
        " (https://<id>.execute-api.<region>.amazonaws.com/<stage> or http://host:port/restapis/<id>/<stage>/...)"
    )


def apigateway_of(api_url: str):
    """An apigateway client for the deployment at api_url, and its REST API id. Credentials and the
    endpoint (AWS_ENDPOINT_URL for LocalStack) come from the environment as boto3 finds them; the
    region from an AWS invoke URL, where the API is, else from the environment."""
    return boto3.client("apigateway", region_name=region_of(api_url)), rest_api_id_of(api_url)


def region_of(api_url: str) -> str | None:
    """The region in an AWS invoke URL; None elsewhere (the environment's region applies)."""
    labels = (urlsplit(api_url).hostname or "").split(".")
    return labels[2] if len(labels) > 3 and labels[1] == "execute-api" else None


def _pages(client, operation: str, **parameters) -> Iterator[dict]:
    for page in client.get_paginator(operation).paginate(**parameters):
        yield from page.get("items", [])


def usage_plans(client, rest_api_id: str) -> dict[str, str]:
    """Plan name -> usage plan id, for the plans bound to a stage of that REST API."""
    return {
        plan["name"]: plan["id"]
        for plan in _pages(client, "get_usage_plans")
        if any(stage["apiId"] == rest_api_id for stage in plan.get("apiStages", []))
    }


def _timestamp(created: datetime | str | None) -> str:
    return created.isoformat() if isinstance(created, datetime) else str(created or "")


def _api_key(key: dict, plan: str, value: str | None = None) -> ApiKey:
    return ApiKey(
        id=key["id"],
        name=key.get("name", ""),
        plan=plan,
        enabled=key.get("enabled", False),
        created_at=_timestamp(key.get("createdDate")),
        value=value,
    )


def create_key(client, rest_api_id: str, plan: str, name: str | None = None) -> ApiKey:
    """An enabled key added to the named plan, its value set (the one time it is shown)."""
    plans = usage_plans(client, rest_api_id)
    if plan not in plans:
        known = ", ".join(sorted(plans)) or "none"
        raise UnknownPlan(f"no usage plan {plan!r} on API {rest_api_id} (its plans: {known})")
    created = client.create_api_key(**({"name": name} if name else {}), enabled=True)
    client.create_usage_plan_key(usagePlanId=plans[plan], keyId=created["id"], keyType="API_KEY")
    return _api_key(created, plan, value=created["value"])


def list_keys(client, rest_api_id: str) -> list[ApiKey]:
    """The keys in that API's plans (one entry per plan a key is in), without their values."""
    # A plan may still list a key deleted elsewhere; only keys that exist are listed.
    existing = {key["id"]: key for key in _pages(client, "get_api_keys")}
    return [
        _api_key(existing[plan_key["id"]], plan)
        for plan, plan_id in usage_plans(client, rest_api_id).items()
        for plan_key in _pages(client, "get_usage_plan_keys", usagePlanId=plan_id)
        if plan_key["id"] in existing
    ]


def revoke_key(client, rest_api_id: str, key_id: str) -> None:
    """Delete a key of that API's plans; a key id it does not know (or another API's key) is UnknownKey."""
    if not any(key.id == key_id for key in list_keys(client, rest_api_id)):
        raise UnknownKey(f"no API key {key_id!r} in the usage plans of API {rest_api_id}; see `cutout keys list`")
    client.delete_api_key(apiKey=key_id)
