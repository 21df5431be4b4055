"""What 1,000 images cost on AWS, from the stage times the benchmarks measured.

Lambda is billed per GB-second at the memory cdk.json configures, so each stage's cost is its
measured time times that memory. The times were measured on this machine's 2 vCPUs; Lambda gives
1 vCPU per 1,769 MB, so inference at 3,008 MB (1.7 vCPU) runs a little slower than measured here.
The API handler's time is the in-process time against moto plus a round trip to DynamoDB/S3,
which we assume is 10 ms. Every job also costs what the jobs table's stream starts: `notify` counts
it, schedules its deadline check (`deadlines`) and puts its end on EventBridge. Two ways a client
learns its job ended, side by side: polling `GET /v1/jobs/{id}` POLLS times, or a webhook that
`deliver` POSTs to the client (no polls). Usage: bench/cost.py RESULTS_DIR (the JSON files
run_all.py writes).
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# List prices, us-east-1, x86, on-demand, as published by AWS; change them here.
PRICES = {
    "lambda_gb_second": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "rest_api_request": 3.50 / 1e6,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "eventbridge_event": 1.00 / 1e6,
}
# What one image does besides computing: a POST, POLLS status reads, the upload, normalize's
# read and write, inference's read and write, the client's download of the result.
POLLS = 5
S3_PUTS = 3  # upload, prepared source, result
S3_GETS = 3  # normalize reads the upload, inference the prepared source, the client the result
JOB_WRITES = 5  # create, normalizing, queued, processing, succeeded
# With API keys every job item has an owner, and the owner index projects ALL attributes: DynamoDB
# writes the index again on each write of the job item.
OWNER_INDEX_WRITES_PER_JOB_WRITE = 1
INFERENCE_SQS_REQUESTS = 3  # send, receive, delete
AWS_ROUND_TRIP_MS = 10
# A stream filter hands notify only the job's INSERT and its terminal transition; Lambda's own
# reads of the stream are free.
NOTIFY_INVOCATIONS = 2
# Stats ADD and the deadline check's SendMessage on INSERT; PutEvents, the webhook's SendMessage and
# stats ADD on the terminal one.
NOTIFY_AWS_CALLS = 5
STATS_WRITES = 2  # the 5-minute bucket's counter, on INSERT and on the terminal transition
EVENTS = 1  # the terminal transition's PutEvents entry
# The deadline check of a job done within its upload window: one delayed message that finds it
# ended, received in batches of up to 10 (infra.functions.DEADLINE_BATCH_SIZE).
DEADLINE_SQS_REQUESTS = 3  # notify's send, the event source's receive and delete
DEADLINE_READS = 1
DEADLINE_INVOCATIONS_PER_JOB = 1 / 10
# deliver waits for the client's receiver, and Lambda bills the wait: assumed, not measured.
WEBHOOK_RECEIVER_MS = 200
DELIVER_AWS_CALLS = 2  # GetItem of the job, the conditional UpdateItem recording the delivery
DELIVER_READS = 1
DELIVERY_WRITES = 1  # on the job item, so the owner index is written too
WEBHOOK_SQS_REQUESTS = 3  # notify's send, the event source's receive and delete


@dataclass(frozen=True)
class StageTimes:
    post_ms: float
    get_ms: float
    normalize_ms: float
    inference_ms: float


@dataclass(frozen=True)
class Flow:
    """How a client learns its job ended."""

    polls: int
    webhook: bool


FLOWS = {"polling": Flow(polls=POLLS, webhook=False), "webhooks": Flow(polls=0, webhook=True)}
FUNCTIONS = ("api", "normalize", "inference", "notify", "deliver", "deadlines")


def memory_gb() -> dict[str, float]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {stage: context[f"{stage}_memory_mb"] / 1024 for stage in FUNCTIONS}


def function_use(times: StageTimes, flow: Flow) -> dict[str, tuple[int, float]]:
    """Per function: its invocations for one image and the milliseconds they bill together."""
    api_calls = 1 + flow.polls
    use = {
        "api": (api_calls, times.post_ms + flow.polls * times.get_ms + api_calls * AWS_ROUND_TRIP_MS),
        "normalize": (1, times.normalize_ms + AWS_ROUND_TRIP_MS),
        "inference": (1, times.inference_ms + AWS_ROUND_TRIP_MS),
        "notify": (NOTIFY_INVOCATIONS, NOTIFY_AWS_CALLS * AWS_ROUND_TRIP_MS),
        "deadlines": (DEADLINE_INVOCATIONS_PER_JOB, DEADLINE_READS * AWS_ROUND_TRIP_MS),
    }
    if flow.webhook:
        use["deliver"] = (1, WEBHOOK_RECEIVER_MS + DELIVER_AWS_CALLS * AWS_ROUND_TRIP_MS)
    return use


def dynamodb_units(flow: Flow) -> tuple[int, int]:
    """Write and read units one image costs (items assumed under 1 KB; reads are strongly consistent)."""
    job_writes = JOB_WRITES + (DELIVERY_WRITES if flow.webhook else 0)
    writes = job_writes * (1 + OWNER_INDEX_WRITES_PER_JOB_WRITE) + STATS_WRITES
    reads = flow.polls + DEADLINE_READS + (DELIVER_READS if flow.webhook else 0)
    return writes, reads


def cost_per_thousand(times: StageTimes, flow: Flow) -> dict[str, float]:
    memory = memory_gb()
    use = function_use(times, flow)
    writes, reads = dynamodb_units(flow)
    per_image = {
        "Lambda compute": sum(ms / 1000 * memory[stage] for stage, (_, ms) in use.items()) * PRICES["lambda_gb_second"],
        "Lambda requests": sum(calls for calls, _ in use.values()) * PRICES["lambda_request"],
        "API Gateway": (1 + flow.polls) * PRICES["rest_api_request"],
        "S3 requests": S3_PUTS * PRICES["s3_put"] + S3_GETS * PRICES["s3_get"],
        "DynamoDB": writes * PRICES["dynamodb_write_unit"] + reads * PRICES["dynamodb_read_unit"],
        "SQS": (INFERENCE_SQS_REQUESTS + DEADLINE_SQS_REQUESTS + (WEBHOOK_SQS_REQUESTS if flow.webhook else 0))
        * PRICES["sqs_request"],
        "EventBridge": EVENTS * PRICES["eventbridge_event"],
    }
    return {item: dollars * 1000 for item, dollars in per_image.items()}


def stage_times(results: Path) -> dict[str, StageTimes]:
    """Per input size: API p50s, our normalize path on a JPEG, our inference path."""
    api = json.loads((results / "api.json").read_text())
    normalize = json.loads((results / "normalize.json").read_text())
    inference = json.loads((results / "inference.json").read_text())
    return {
        size: StageTimes(
            api["post"]["total_p50_ms"],
            api["get"]["total_p50_ms"],
            normalize[f"{size.lower()}_jpeg"]["ours_ms"],
            inference["ours_ms"][size],
        )
        for size in ("2MP", "12MP")
    }


def cost_table(times: dict[str, StageTimes]) -> str:
    columns = [(size, name) for size in times for name in FLOWS]
    costs = {(size, name): cost_per_thousand(times[size], FLOWS[name]) for size, name in columns}
    items = costs[columns[0]]
    memory = memory_gb()
    two = times["2MP"]
    return "\n".join(
        [
            "| per 1,000 images | " + " | ".join(f"{size[:-2]} MP JPEG, {name}" for size, name in columns) + " |",
            "|---|" + "---|" * len(columns),
            *(f"| {item} | " + " | ".join(f"${costs[c][item]:.4f}" for c in columns) + " |" for item in items),
            "| **total** | " + " | ".join(f"**${sum(costs[c].values()):.3f}**" for c in columns) + " |",
            "",
            f"Stage times used (ms): normalize {two.normalize_ms:.0f} / {times['12MP'].normalize_ms:.0f}, "
            f"inference {two.inference_ms:.0f} / {times['12MP'].inference_ms:.0f}, API POST {two.post_ms:.1f} "
            f"and GET {two.get_ms:.1f} (+{AWS_ROUND_TRIP_MS} ms assumed AWS round trip per stage and per AWS "
            f"call of notify and deliver); memory api {memory['api'] * 1024:.0f} MB, normalize "
            f"{memory['normalize'] * 1024:.0f} MB, inference {memory['inference'] * 1024:.0f} MB, notify "
            f"{memory['notify'] * 1024:.0f} MB, deliver {memory['deliver'] * 1024:.0f} MB, deadlines "
            f"{memory['deadlines'] * 1024:.0f} MB. Every job: {NOTIFY_INVOCATIONS} notify invocations (INSERT, "
            f"terminal), {EVENTS} EventBridge event, {STATS_WRITES} stats writes, a deadline check "
            f"({DEADLINE_SQS_REQUESTS} SQS requests, {DEADLINE_READS} read, a tenth of an invocation). Polling: "
            f"{POLLS} status polls per image. Webhooks: no polls; one deliver invocation billed "
            f"{WEBHOOK_RECEIVER_MS} ms assumed for the client's receiver, {WEBHOOK_SQS_REQUESTS} more SQS "
            f"requests, {DELIVERY_WRITES} delivery write, {DELIVER_READS} more read. DynamoDB write units per "
            f"image: {dynamodb_units(FLOWS['polling'])[0]} polling, {dynamodb_units(FLOWS['webhooks'])[0]} "
            "webhooks (each job write also writes the owner index). Prices assumed "
            f"(us-east-1 list): Lambda ${PRICES['lambda_gb_second']:.10f}/GB-s and "
            f"${PRICES['lambda_request'] * 1e6:.2f}/M requests, REST API ${PRICES['rest_api_request'] * 1e6:.2f}/M, "
            f"S3 PUT ${PRICES['s3_put'] * 1000:.3f}/1k and GET ${PRICES['s3_get'] * 1000:.4f}/1k, DynamoDB "
            f"on-demand ${PRICES['dynamodb_write_unit'] * 1e6:.3f}/M writes and "
            f"${PRICES['dynamodb_read_unit'] * 1e6:.3f}/M reads, SQS ${PRICES['sqs_request'] * 1e6:.2f}/M, "
            f"EventBridge ${PRICES['eventbridge_event'] * 1e6:.2f}/M events. Storage is negligible (objects live "
            "a day at "
            "most); Secrets Manager (one read per deliver container, $0.05/10k calls, $0.40/secret-month), "
            "CloudWatch Logs, X-Ray and data transfer out are not counted.",
        ]
    )


def table(results: Path) -> str:
    return cost_table(stage_times(results))


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
