"""`cutout stats`: how a deployment is doing, read with AWS credentials (not an API key).

The deployment is found from its API URL: the REST API's CloudFormation stack names its queues and
counters table in its outputs. The figures are computed by the service's own code (``cutout.aws``,
which GET /v1/stats answers with), so this needs the Cutout package beside the CLI, as a checkout
of the repository has it.
"""

import time
from dataclasses import asdict

import boto3

from cutout_cli.keys import NotAnInvokeUrl, rest_api_id_of

# The stack outputs that name each watched queue (cutout.stats.WATCHED_QUEUES) and the counters.
QUEUE_OUTPUTS = {
    "inference": "QueueUrl",
    "inference_dead_letters": "DeadLetterQueueUrl",
    "webhooks": "WebhookQueueUrl",
    "notification_dead_letters": "NotificationDeadLetterQueueUrl",
}
STATS_TABLE_OUTPUT = "StatsTableName"
API_URL_OUTPUT = "ApiUrl"


class NotACutoutStack(LookupError):
    pass


def stack_outputs(api_url: str, region: str | None = None) -> dict[str, str]:
    """The outputs of the Cutout stack whose ApiUrl output is the REST API at api_url."""
    rest_api_id = rest_api_id_of(api_url)
    pages = boto3.client("cloudformation", region_name=region).get_paginator("describe_stacks").paginate()
    for stack in (stack for page in pages for stack in page["Stacks"]):
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        if rest_api_id_of_output(outputs.get(API_URL_OUTPUT)) != rest_api_id:
            continue
        missing = [name for name in (*QUEUE_OUTPUTS.values(), STATS_TABLE_OUTPUT) if name not in outputs]
        if missing:
            raise NotACutoutStack(f"stack {stack['StackName']} has no output {', '.join(missing)}: an older Cutout?")
        return outputs
    raise NotACutoutStack(f"no CloudFormation stack here has the REST API {rest_api_id} as its {API_URL_OUTPUT}")


def rest_api_id_of_output(api_url: str | None) -> str | None:
    try:
        return rest_api_id_of(api_url) if api_url else None
    except NotAnInvokeUrl:
        return None


def deployment_stats(api_url: str, region: str | None = None) -> dict:
    try:
        from cutout.aws import operator_stats
    except ImportError:
        raise NotACutoutStack(
            "cutout stats needs the Cutout package (pip install -e layers/shared in a checkout)"
        ) from None
    outputs = stack_outputs(api_url, region)
    queue_urls = {name: outputs[output] for name, output in QUEUE_OUTPUTS.items()}
    return asdict(operator_stats(queue_urls, outputs[STATS_TABLE_OUTPUT], time.time()))


def stats_text(stats: dict) -> str:
    """The figures as a person reads them: one line per queue, then per kind of job."""
    lines = [f"{'queue':<28}{'waiting':>9}{'in flight':>11}{'oldest':>9}"]
    for name, queue in stats["queues"].items():
        age = "-" if queue["oldest_age_s"] is None else f"{queue['oldest_age_s']}s"
        lines.append(f"{name:<28}{queue['waiting']:>9}{queue['in_flight']:>11}{age:>9}")
    hour, day = stats["jobs"]["last_hour"], stats["jobs"]["last_day"]
    lines += ["", f"{'jobs':<28}{'last hour':>11}{'last day':>10}"]
    for kind in ("created", "succeeded", "failed", "cancelled", "expired"):
        lines.append(f"{kind:<28}{hour[kind]:>11}{day[kind]:>10}")
    for code in sorted(set(hour["failed_by_code"]) | set(day["failed_by_code"])):
        in_hour, in_day = hour["failed_by_code"].get(code, 0), day["failed_by_code"].get(code, 0)
        lines.append(f"{'  failed: ' + code:<28}{in_hour:>11}{in_day:>10}")
    return "\n".join(lines)
