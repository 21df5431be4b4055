"""What 1,000 images cost on AWS, from the stage times the benchmarks measured.

Lambda is billed per GB-second at the memory cdk.json configures, so each stage's cost is its
measured time times that memory. The times were measured on this machine's 2 vCPUs; Lambda gives
1 vCPU per 1,769 MB, so inference at 3,008 MB (1.7 vCPU) runs a little slower than measured here.
The API handler's time is the in-process time against moto plus a round trip to DynamoDB/S3,
which we assume is 10 ms. Usage: bench/cost.py RESULTS_DIR (the JSON files run_all.py writes).
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
}
# What one image does besides computing: a POST, POLLS status reads, the upload, normalize's
# read and write, inference's read and write, the client's download of the result.
POLLS = 5
API_CALLS = 1 + POLLS
S3_PUTS = 3  # upload, prepared source, result
S3_GETS = 3  # normalize reads the upload, inference the prepared source, the client the result
DYNAMODB_WRITES = 5  # create, normalizing, queued, processing, succeeded
SQS_REQUESTS = 3  # send, receive, delete
AWS_ROUND_TRIP_MS = 10


@dataclass(frozen=True)
class StageTimes:
    api_ms: float
    normalize_ms: float
    inference_ms: float


def memory_gb() -> dict[str, float]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {stage: context[f"{stage}_memory_mb"] / 1024 for stage in ("api", "normalize", "inference")}


def cost_per_thousand(times: StageTimes) -> dict[str, float]:
    memory = memory_gb()
    lambda_gb_s = (
        API_CALLS * (times.api_ms + AWS_ROUND_TRIP_MS) / 1000 * memory["api"]
        + (times.normalize_ms + AWS_ROUND_TRIP_MS) / 1000 * memory["normalize"]
        + (times.inference_ms + AWS_ROUND_TRIP_MS) / 1000 * memory["inference"]
    )
    per_image = {
        "Lambda compute": lambda_gb_s * PRICES["lambda_gb_second"],
        "Lambda requests": (API_CALLS + 2) * PRICES["lambda_request"],
        "API Gateway": API_CALLS * PRICES["rest_api_request"],
        "S3 requests": S3_PUTS * PRICES["s3_put"] + S3_GETS * PRICES["s3_get"],
        "DynamoDB": DYNAMODB_WRITES * PRICES["dynamodb_write_unit"] + POLLS * PRICES["dynamodb_read_unit"],
        "SQS": SQS_REQUESTS * PRICES["sqs_request"],
    }
    return {item: dollars * 1000 for item, dollars in per_image.items()}


def stage_times(results: Path) -> dict[str, StageTimes]:
    """Per input size: API p50, our normalize path on a JPEG, our inference path."""
    api = json.loads((results / "api.json").read_text())
    normalize = json.loads((results / "normalize.json").read_text())
    inference = json.loads((results / "inference.json").read_text())
    api_ms = (api["post"]["total_p50_ms"] + POLLS * api["get"]["total_p50_ms"]) / API_CALLS
    return {
        size: StageTimes(api_ms, normalize[f"{size.lower()}_jpeg"]["ours_ms"], inference["ours_ms"][size])
        for size in ("2MP", "12MP")
    }


def table(results: Path) -> str:
    times = stage_times(results)
    costs = {size: cost_per_thousand(t) for size, t in times.items()}
    memory = memory_gb()
    lines = [
        "| per 1,000 images | 2 MP JPEG | 12 MP JPEG |",
        "|---|---|---|",
        *(f"| {item} | ${costs['2MP'][item]:.4f} | ${costs['12MP'][item]:.4f} |" for item in costs["2MP"]),
        f"| **total** | **${sum(costs['2MP'].values()):.3f}** | **${sum(costs['12MP'].values()):.3f}** |",
        "",
        f"Stage times used (ms): normalize {times['2MP'].normalize_ms:.0f} / {times['12MP'].normalize_ms:.0f}, "
        f"inference {times['2MP'].inference_ms:.0f} / {times['12MP'].inference_ms:.0f}, API call "
        f"{times['2MP'].api_ms:.1f} (+{AWS_ROUND_TRIP_MS} ms assumed AWS round trip per stage); memory "
        f"api {memory['api'] * 1024:.0f} MB, normalize {memory['normalize'] * 1024:.0f} MB, "
        f"inference {memory['inference'] * 1024:.0f} MB; {POLLS} status polls per image. Prices assumed "
        f"(us-east-1 list): Lambda ${PRICES['lambda_gb_second']:.10f}/GB-s and $0.20/M requests, REST API "
        "$3.50/M, S3 PUT $0.005/1k and GET $0.0004/1k, DynamoDB on-demand $0.625/M writes and $0.125/M "
        "reads, SQS $0.40/M. Storage is negligible (objects live a day at most); CloudWatch Logs, X-Ray "
        "and data transfer out are not counted.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
