"""What 1,000 images cost on AWS, from the stage times the benchmarks measured.

Lambda is billed per GB-second at the memory cdk.json configures, so each stage's cost is its
measured time times that memory. Lambda gives a function 1 vCPU per 1,769 MB, so inference's time
depends on its memory: bench/inference.py measures it on one core and on two, and the two give
its serial part and the part ONNX splits across cores (Amdahl) when the engine runs more than one
ONNX thread (cutout_inference.engine.threads_for); with one, more vCPUs change nothing, and below
1 vCPU the whole run slows in proportion; beyond 2 vCPUs the split is extrapolated (this machine
has 2 cores). The memory setting recommended is the one that makes an image cheapest among those
that hold a container serving every model (its measured peak RSS plus RSS_HEADROOM).
The API handler's time is the in-process time against moto plus a round trip to DynamoDB/S3,
which we assume is 10 ms. Every job also costs what the jobs table's stream starts: `notify` counts
it, schedules its deadline check (`deadlines`) and puts its end on EventBridge. Two ways a client
learns its job ended, side by side: polling `GET /v1/jobs/{id}` POLLS times, or a webhook that
`deliver` POSTs to the client (no polls). Usage: bench/cost.py RESULTS_DIR (the JSON files
run_all.py writes).
"""

import json
import math
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cutout_inference.engine import LAMBDA_MB_PER_VCPU, lambda_vcpus, threads_for

ROOT = Path(__file__).resolve().parent.parent

# List prices, us-east-1, x86, on-demand, as published by AWS; change them here.
PRICES = {
    "lambda_gb_second": 0.0000166667,
    "lambda_gb_second_arm64": 0.0000133334,
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


# Inference memory settings priced beside the recommendation: below one vCPU, one, and up to six.
MEMORY_CHOICES_MB = (1024, LAMBDA_MB_PER_VCPU, 2048, 3008, 3538, 5307, 7076, 10240)
# Lambda stops a function that reaches its memory size: room for what the measured peak missed.
RSS_HEADROOM = 1.15
# The memory a container needs is rounded up to this, so a recommendation does not move with every
# megabyte of a noisy peak.
MEMORY_STEP_MB = 64


@dataclass(frozen=True)
class InferenceScaling:
    """Inference's time measured on one core and on two, and so at any vCPUs Lambda gives."""

    one_vcpu_ms: float
    two_vcpus_ms: float

    def ms_at(self, vcpus: float) -> float:
        if vcpus <= 1:
            return self.one_vcpu_ms / vcpus
        if threads_for(vcpus) == 1:
            return self.one_vcpu_ms
        parallel = max(0.0, 2 * (self.one_vcpu_ms - self.two_vcpus_ms))
        return self.one_vcpu_ms - parallel + parallel / vcpus


@dataclass(frozen=True)
class StageTimes:
    post_ms: float
    get_ms: float
    normalize_ms: float
    inference: InferenceScaling

    def inference_ms(self, memory_mb: float) -> float:
        return self.inference.ms_at(lambda_vcpus(memory_mb))


@dataclass(frozen=True)
class Flow:
    """How a client learns its job ended."""

    polls: int
    webhook: bool


FLOWS = {"polling": Flow(polls=POLLS, webhook=False), "webhooks": Flow(polls=0, webhook=True)}
FUNCTIONS = ("api", "normalize", "inference", "notify", "deliver", "deadlines")


@cache
def context() -> dict:
    """cdk.json's settings, read once."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def memory_gb() -> dict[str, float]:
    return {stage: context()[f"{stage}_memory_mb"] / 1024 for stage in FUNCTIONS}


def gb_second_price(architecture: str) -> float:
    return PRICES["lambda_gb_second_arm64" if architecture == "arm64" else "lambda_gb_second"]


def function_use(times: StageTimes, flow: Flow) -> dict[str, tuple[int, float]]:
    """Per function: its invocations for one image and the milliseconds they bill together."""
    api_calls = 1 + flow.polls
    use = {
        "api": (api_calls, times.post_ms + flow.polls * times.get_ms + api_calls * AWS_ROUND_TRIP_MS),
        "normalize": (1, times.normalize_ms + AWS_ROUND_TRIP_MS),
        "inference": (1, times.inference_ms(context()["inference_memory_mb"]) + AWS_ROUND_TRIP_MS),
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


def cost_per_thousand(times: StageTimes, flow: Flow, architecture: str) -> dict[str, float]:
    memory = memory_gb()
    use = function_use(times, flow)
    writes, reads = dynamodb_units(flow)
    gb_seconds = sum(ms / 1000 * memory[stage] for stage, (_, ms) in use.items())
    per_image = {
        "Lambda compute": gb_seconds * gb_second_price(architecture),
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
            InferenceScaling(inference["ours_one_vcpu_ms"][size], inference["ours_ms"][size]),
        )
        for size in ("2MP", "12MP")
    }


def cost_table(times: dict[str, StageTimes]) -> str:
    architecture = context()["architecture"]
    columns = [(size, name) for size in times for name in FLOWS]
    costs = {(size, name): cost_per_thousand(times[size], FLOWS[name], architecture) for size, name in columns}
    arm_row = (
        []
        if architecture == "arm64"
        else [
            "| total on arm64 (`architecture`: Graviton's price, this host's speed) | "
            + " | ".join(f"${sum(cost_per_thousand(times[s], FLOWS[n], 'arm64').values()):.3f}" for s, n in columns)
            + " |"
        ]
    )
    items = costs[columns[0]]
    inference_mb = context()["inference_memory_mb"]
    two, twelve = times["2MP"], times["12MP"]
    return "\n".join(
        [
            "| per 1,000 images | " + " | ".join(f"{size[:-2]} MP JPEG, {name}" for size, name in columns) + " |",
            "|---|" + "---|" * len(columns),
            *(f"| {item} | " + " | ".join(f"${costs[c][item]:.4f}" for c in columns) + " |" for item in items),
            "| **total** | " + " | ".join(f"**${sum(costs[c].values()):.3f}**" for c in columns) + " |",
            *arm_row,
            "",
            f"Architecture {architecture}. Stage times used (ms): normalize {two.normalize_ms:.0f} / "
            f"{twelve.normalize_ms:.0f}, inference {two.inference_ms(inference_mb):.0f} / "
            f"{twelve.inference_ms(inference_mb):.0f} at {lambda_vcpus(inference_mb):.2f} vCPU (measured "
            f"{two.inference.one_vcpu_ms:.0f} / {twelve.inference.one_vcpu_ms:.0f} on one core, "
            f"{two.inference.two_vcpus_ms:.0f} / {twelve.inference.two_vcpus_ms:.0f} on two), "
            f"API POST {two.post_ms:.1f} "
            f"and GET {two.get_ms:.1f} (+{AWS_ROUND_TRIP_MS} ms assumed AWS round trip per stage and per AWS "
            f"call of notify and deliver); memory "
            + ", ".join(f"{stage} {context()[f'{stage}_memory_mb']} MB" for stage in FUNCTIONS)
            + f". Every job: {NOTIFY_INVOCATIONS} notify invocations (INSERT, "
            f"terminal), {EVENTS} EventBridge event, {STATS_WRITES} stats writes, a deadline check "
            f"({DEADLINE_SQS_REQUESTS} SQS requests, {DEADLINE_READS} read, a tenth of an invocation). Polling: "
            f"{POLLS} status polls per image. Webhooks: no polls; one deliver invocation billed "
            f"{WEBHOOK_RECEIVER_MS} ms assumed for the client's receiver, {WEBHOOK_SQS_REQUESTS} more SQS "
            f"requests, {DELIVERY_WRITES} delivery write, {DELIVER_READS} more read. DynamoDB write units per "
            f"image: {dynamodb_units(FLOWS['polling'])[0]} polling, {dynamodb_units(FLOWS['webhooks'])[0]} "
            "webhooks (each job write also writes the owner index). Prices assumed "
            f"(us-east-1 list): Lambda ${PRICES['lambda_gb_second']:.10f}/GB-s (arm64 "
            f"${PRICES['lambda_gb_second_arm64']:.10f}) and "
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


def inference_cost(times: StageTimes, memory_mb: float) -> float:
    """Inference's compute for 1,000 images at this memory setting, at the configured architecture's price."""
    seconds = (times.inference_ms(memory_mb) + AWS_ROUND_TRIP_MS) / 1000
    return seconds * memory_mb / 1024 * gb_second_price(context()["architecture"]) * 1000


def needed_memory_mb(peak_rss_mb: float) -> int:
    return math.ceil(peak_rss_mb * RSS_HEADROOM / MEMORY_STEP_MB) * MEMORY_STEP_MB


def recommended_memory_mb(times: StageTimes, peak_rss_mb: float) -> int:
    """The inference memory that makes an image cheapest among those that hold peak_rss_mb with
    headroom and give at least one vCPU: below one, an image costs the same but for the billed AWS
    round trip, and takes longer in proportion."""
    floor = max(needed_memory_mb(peak_rss_mb), LAMBDA_MB_PER_VCPU)
    choices = {floor, *(mb for mb in MEMORY_CHOICES_MB if mb >= floor)}
    return min(choices, key=lambda mb: inference_cost(times, mb))


def memory_table(times: dict[str, StageTimes], peak_rss_mb: float) -> str:
    needed = needed_memory_mb(peak_rss_mb)
    recommended = recommended_memory_mb(times["2MP"], peak_rss_mb)
    rows = sorted({recommended, *MEMORY_CHOICES_MB})
    return "\n".join(
        [
            "| inference memory | vCPUs | 2 MP ms | 12 MP ms | compute per 1,000, 2 MP | 12 MP | holds every model |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {mb} MB{' (recommended)' if mb == recommended else ''} | {lambda_vcpus(mb):.2f} | "
                f"{times['2MP'].inference_ms(mb):.0f} | {times['12MP'].inference_ms(mb):.0f} | "
                f"${inference_cost(times['2MP'], mb):.4f} | ${inference_cost(times['12MP'], mb):.4f} | "
                f"{'yes' if mb >= needed else 'no'} |"
                for mb in rows
            ),
            "",
            f"A container that has served every model peaks at {peak_rss_mb:.0f} MB (bench/inference.py), so it "
            f"needs {needed} MB with {RSS_HEADROOM - 1:.0%} headroom (rounded up to {MEMORY_STEP_MB} MB). Below 1 "
            f"vCPU ({LAMBDA_MB_PER_VCPU} MB) an image costs the same but for the billed AWS round trip and takes "
            "longer in proportion. Above it the run keeps one ONNX thread, and so its time, until the vCPUs "
            "pay for a second (threads_for); from there only the part ONNX spreads gets faster, while the "
            "serial part (decode, resizes, encode: one core) is billed at every extra GB. Times beyond 2 vCPUs "
            "are extrapolated from the split measured on one and two cores. Recommended memory setting: "
            f"**inference_memory_mb {recommended}** (cdk.json has {context()['inference_memory_mb']}).",
        ]
    )


def table(results: Path) -> str:
    times = stage_times(results)
    peak_rss_mb = json.loads((results / "inference.json").read_text())["every_model"]["peak_rss_mb"]
    return cost_table(times) + "\n\n" + memory_table(times, peak_rss_mb)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
