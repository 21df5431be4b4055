"""Synthesizing the stack for tests: from cdk.json's context, without bundling or validation.

Nothing here needs Docker or the network: bundling is skipped (the assets are not built), and
CDK's template validation (seconds per synth) is left to `make synth`. A module of its own name,
not conftest, so that test modules can import it whatever other conftest files pytest loaded.
"""

import json
import os
from fnmatch import fnmatchcase
from pathlib import Path

# jsii prints a banner for end-of-life Node versions; the CI machines have Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.settings import StackSettings  # noqa: E402
from infra.stack import CutoutStack  # noqa: E402
from infra.wiring import DEADLINES, DELIVER, INFERENCE, NOTIFY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
# Non-default values for every knob that changes the template's shape, all in one synth.
TUNED = {
    "stack_name": "CutoutTuned",
    "inference_packaging": "zip",
    "bundle_dependencies": "false",
    "allowed_origins": "https://a.example,https://b.example",
    "removal_policy": "retain",
    "auto_delete_objects": "false",
    "point_in_time_recovery": "true",
    "s3_addressing_style": "path",
    "result_ttl_s": str(3 * 86400 + 1),
    "job_retention_s": str(5 * 86400),
    "max_receive_count": "5",
    "inference_timeout_s": "200",
    "stall_timeout_s": "3600",
    "inference_reserved_concurrency": "20",
    "api_reserved_concurrency": "30",
    "normalize_reserved_concurrency": "8",
    "inference_max_concurrency": "10",
    "inference_batch_size": "4",
    "webhook_attempts": "11",
    "deliver_timeout_s": "45",
    "notify_reserved_concurrency": "2",
    "deliver_reserved_concurrency": "4",
    "deadlines_timeout_s": "40",
    "deadlines_reserved_concurrency": "3",
    "tracing": "false",
    "log_level": "DEBUG",
}

# Listing the usage plans (a key's, for GET /v1/stats): API Gateway's ARN of the collection, as it renders.
USAGE_PLANS_ARN = {
    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"}, "::/usageplans"]]
}
# The resources whose PolicyDocument is a policy (roles carry theirs inline, under Policies).
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy")


def app_for(overrides: dict | None = None, outdir: str | None = None) -> cdk.App:
    return cdk.App(
        context={**CDK_CONTEXT, **(overrides or {}), "aws:cdk:bundling-stacks": []},
        builtin_cloud_formation_validation=False,
        outdir=outdir,
    )


class Synthesized:
    def __init__(self, overrides: dict | None = None):
        app = app_for(overrides)
        self.settings = StackSettings.from_context(app.node)
        self.template = Template.from_stack(CutoutStack(app, self.settings.stack_name, self.settings))
        self.json = self.template.to_json()
        self.resources = self.json["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {key: r for key, r in self.resources.items() if r["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict]:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def methods_by_route(self) -> dict[tuple[str, str], dict]:
        """Every API method's properties, preflights included, by (verb, resource path)."""
        resources = self.of_type("AWS::ApiGateway::Resource")

        def path_of(resource_ref: dict) -> str:
            if "Fn::GetAtt" in resource_ref:  # the root resource
                return ""
            props = resources[resource_ref["Ref"]]["Properties"]
            return f"{path_of(props['ParentId'])}/{props['PathPart']}"

        return {
            (m["Properties"]["HttpMethod"], path_of(m["Properties"]["ResourceId"]) or "/"): m["Properties"]
            for m in self.of_type("AWS::ApiGateway::Method").values()
        }

    def table_keyed_by(self, partition_key: str) -> tuple[str, dict]:
        """The one table whose partition key is that attribute."""
        (found,) = [
            (key, table)
            for key, table in self.of_type("AWS::DynamoDB::Table").items()
            if table["Properties"]["KeySchema"] == [{"AttributeName": partition_key, "KeyType": "HASH"}]
        ]
        return found

    def event_source(self, name: str) -> tuple[str, dict]:
        """The event source mapping that invokes a Cutout function, by the function's wiring name."""
        function_key, _ = self.function(name)
        found = [
            (key, mapping)
            for key, mapping in self.of_type("AWS::Lambda::EventSourceMapping").items()
            if mapping["Properties"]["FunctionName"] == {"Ref": function_key}
        ]
        assert len(found) == 1, f"expected one event source of {name}, found {len(found)}"
        return found[0]

    def source_key(self, name: str) -> str:
        """What a function's event source mapping reads: a queue, or the table whose stream it is."""
        return self.event_source(name)[1]["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]

    def notification_queue_keys(self) -> tuple[str, str]:
        """The webhook queue (the one deliver consumes) and the notifications' dead-letter queue
        (where the notifier's stream mapping gives records up)."""
        _, stream_mapping = self.event_source(NOTIFY.name)
        dead_letters = stream_mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        return self.source_key(DELIVER.name), dead_letters

    def deadline_queue_key(self) -> str:
        """The deadline check queue: the one the deadlines function consumes."""
        return self.source_key(DEADLINES.name)

    def queue_keys(self) -> tuple[str, str]:
        """The inference queue (the one inference consumes) and its dead-letter queue: the one queue
        left when the notifications' three are set aside. Neither is read off the redrive policy the
        tests check."""
        queue = self.source_key(INFERENCE.name)
        notification_queues = {*self.notification_queue_keys(), self.deadline_queue_key()}
        (dead_letters,) = set(self.of_type("AWS::SQS::Queue")) - {queue, *notification_queues}
        return queue, dead_letters

    def function(self, name: str) -> tuple[str, dict]:
        """A Cutout function by its wiring name (its Powertools service name says which it is)."""
        found = [
            (key, r)
            for key, r in self.of_type("AWS::Lambda::Function").items()
            if r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
            == f"cutout-{name}"
        ]
        assert len(found) == 1, f"expected one {name} function, found {len(found)}"
        return found[0]

    def role_of(self, name: str) -> str:
        """A Cutout function's role, by the function's wiring name."""
        _, function = self.function(name)
        return function["Properties"]["Role"]["Fn::GetAtt"][0]

    def role_statements(self, role_key: str) -> list[dict]:
        return [
            statement
            for policy in self.of_type("AWS::IAM::Policy").values()
            if {"Ref": role_key} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def policy_statements(self) -> list[tuple[str, dict]]:
        """Every statement of every identity and resource policy in the template, with where it is."""
        found = []
        for key, resource in self.resources.items():
            props = resource.get("Properties", {})
            documents = []
            if resource["Type"] in POLICY_TYPES:
                documents.append(props["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::Role":
                documents.extend(policy["PolicyDocument"] for policy in props.get("Policies", []))
            for document in documents:
                found.extend((key, statement) for statement in document["Statement"])
        return found

    def holders_of(self, action: str) -> set[tuple[str, str]]:
        """Who may do the action on what, by any policy of the template, a wildcard in the action
        included: (role, or the resource policy's own key; resource as JSON)."""
        found = set()
        for owner, statement in self.policy_statements():
            if statement["Effect"] != "Allow":
                continue
            if not any(fnmatchcase(action.lower(), allowed.lower()) for allowed in as_list(statement["Action"])):
                continue
            roles = [role["Ref"] for role in self.resources[owner]["Properties"].get("Roles", [])] or [owner]
            found |= {
                (role, json.dumps(resource, sort_keys=True))
                for role in roles
                for resource in as_list(statement["Resource"])
            }
        return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def arn_of(key: str) -> str:
    """A resource's ARN, as holders_of renders a resource."""
    return json.dumps({"Fn::GetAtt": [key, "Arn"]}, sort_keys=True)
