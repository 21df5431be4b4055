"""Synthesizing the stack for tests: from cdk.json's context, without bundling or validation.

Nothing here needs Docker or the network: bundling is skipped (the assets are not built), and
CDK's template validation (seconds per synth) is left to `make synth`. A module of its own name,
not conftest, so that test modules can import it whatever other conftest files pytest loaded.
"""

import json
import os
from pathlib import Path

# jsii prints a banner for end-of-life Node versions; the CI machines have Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.settings import StackSettings  # noqa: E402
from infra.stack import CutoutStack  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
# Non-default values for every knob that changes the template's shape, all in one synth.
TUNED = {
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
    "tracing": "false",
    "log_level": "DEBUG",
}


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

    def queue_keys(self) -> tuple[str, str]:
        """The inference queue (the one with a redrive policy) and its dead-letter queue."""
        queues = self.of_type("AWS::SQS::Queue")
        (queue,) = [key for key, q in queues.items() if "RedrivePolicy" in q["Properties"]]
        (dead_letters,) = set(queues) - {queue}
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

    def role_statements(self, role_key: str) -> list[dict]:
        return [
            statement
            for policy in self.of_type("AWS::IAM::Policy").values()
            if {"Ref": role_key} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
