"""Load test: N clients doing the whole flow against the local stack, then rembg on the same images.

    .venv/bin/python bench/load.py [--jobs 200] [--concurrency 16] [--timeout 900] [--json PATH]

Each client does what a frontend does: POST /v1/jobs, PUT the bytes to the presigned URL, poll
GET /v1/jobs/{id} with backoff until the job is terminal. Prints submit latency (POST + PUT) and
end-to-end latency (POST until the terminal state is seen) percentiles, throughput, errors by
kind, and fails (exit 1) if any job is lost, i.e. not terminal when the run's time is up. The
baseline is rembg's own synchronous way on this machine: `rembg.remove(bytes, session=
new_session("u2netp"))` in-process, one image after another, on the same images.

Loopback only: the API URL comes from .local/stack.json (written by `make up`) and must be local.
The last line is key=value pairs for scripts; --json writes the same numbers as JSON.
"""

import argparse
import io
import json
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests
from PIL import Image

from cutout.jobs import TERMINAL_STATUSES

REPO = Path(__file__).resolve().parent.parent
STACK_FILE = REPO / ".local" / "stack.json"
PHOTOS = ("astronaut", "chelsea", "coffee")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_POLL_DELAY_S = 2.0
THROTTLE_RETRIES = 5


@dataclass
class Outcome:
    submit_s: float | None = None
    end_to_end_s: float | None = None
    status: str | None = None
    errors: list[str] = field(default_factory=list)


def photos() -> list[bytes]:
    encoded = []
    for name in PHOTOS:
        buffer = io.BytesIO()
        Image.open(REPO / "tests" / "data" / f"{name}.png").convert("RGB").save(buffer, "JPEG", quality=92)
        encoded.append(buffer.getvalue())
    return encoded


def loopback_api_url() -> str:
    if not STACK_FILE.exists():
        raise SystemExit(f"{STACK_FILE.relative_to(REPO)} not found: run `make up` first")
    api_url = json.loads(STACK_FILE.read_text())["api_url"]
    if urlparse(api_url).hostname not in LOOPBACK_HOSTS:
        raise SystemExit(f"refusing to load a non-local API: {api_url}")
    return api_url


def create_job(session: requests.Session, api_url: str, image: bytes, outcome: Outcome) -> dict | None:
    """POST /v1/jobs, backing off on 429 as a client should; None when the API refused."""
    body = {"content_type": "image/jpeg", "content_length": len(image), "output": {"format": "png"}}
    for attempt in range(THROTTLE_RETRIES + 1):
        response = session.post(f"{api_url}/v1/jobs", json=body, timeout=30)
        if response.status_code != 429:
            break
        outcome.errors.append("post_429_retried")
        time.sleep(0.5 * 2**attempt)
    if response.status_code != 201:
        outcome.errors.append(f"post_{response.status_code}")
        return None
    return response.json()


def run_client(api_url: str, image: bytes, deadline: float) -> Outcome:
    outcome = Outcome()
    started = time.monotonic()
    with requests.Session() as session:
        try:
            job = create_job(session, api_url, image, outcome)
            if job is None:
                return outcome
            upload = job["upload"]
            put = session.put(upload["url"], data=image, headers=upload["headers"], timeout=60)
            if put.status_code != 200:
                outcome.errors.append(f"put_{put.status_code}")
                return outcome
            outcome.submit_s = time.monotonic() - started
            delay = 0.2
            while time.monotonic() < deadline:
                polled = session.get(f"{api_url}/v1/jobs/{job['job_id']}", timeout=30)
                if polled.status_code != 200:
                    outcome.errors.append(f"get_{polled.status_code}")
                elif polled.json()["status"] in TERMINAL_STATUSES:
                    outcome.status = polled.json()["status"]
                    outcome.end_to_end_s = time.monotonic() - started
                    if outcome.status != "succeeded":
                        error = polled.json().get("error") or {}
                        outcome.errors.append(f"{outcome.status}_{error.get('code', 'no_code')}")
                    return outcome
                time.sleep(delay)
                delay = min(delay * 1.5, MAX_POLL_DELAY_S)
            outcome.errors.append("lost")
        except requests.RequestException as error:
            outcome.errors.append(f"request_{type(error).__name__}")
    return outcome


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def load(api_url: str, images: list[bytes], concurrency: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    done = Counter()
    lock = threading.Lock()

    def client(image: bytes) -> Outcome:
        outcome = run_client(api_url, image, deadline)
        with lock:
            done[outcome.status] += 1
            finished = sum(done.values())
        if finished % max(1, len(images) // 10) == 0:
            print(f"  {finished}/{len(images)} clients finished", file=sys.stderr, flush=True)
        return outcome

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(client, images))
    elapsed = time.monotonic() - started
    submits = [o.submit_s for o in outcomes if o.submit_s is not None]
    end_to_end = [o.end_to_end_s for o in outcomes if o.status == "succeeded"]
    statuses = Counter(o.status for o in outcomes)
    return {
        "jobs": len(images),
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 2),
        "succeeded": statuses["succeeded"],
        # Uploaded but never seen terminal: the job the pipeline owes an answer and did not give.
        "lost": sum(1 for o in outcomes if o.submit_s is not None and o.status is None),
        "throughput_per_min": round(statuses["succeeded"] / elapsed * 60, 1),
        **{f"submit_p{p}_s": rounded(percentile(submits, p / 100)) for p in (50, 95, 99)},
        **{f"e2e_p{p}_s": rounded(percentile(end_to_end, p / 100)) for p in (50, 95, 99)},
        "errors": dict(Counter(error for o in outcomes for error in o.errors)),
    }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def rembg_baseline(images: list[bytes]) -> dict:
    """rembg's synchronous in-process path, one image after another, on the same images."""
    os.environ.setdefault("U2NET_HOME", str(REPO / "models"))
    from rembg import new_session, remove

    session = new_session("u2netp")
    remove(images[0], session=session)  # the first call builds ORT's arena: not a per-image cost
    started = time.monotonic()
    for image in images:
        remove(image, session=session)
    elapsed = time.monotonic() - started
    return {
        "rembg_images": len(images),
        "rembg_elapsed_s": round(elapsed, 2),
        "rembg_throughput_per_min": round(len(images) / elapsed * 60, 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="jobs to submit (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients at once (default 16)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole load run (default 900)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= 2000 or not 1 <= args.concurrency <= 200:
        parser.error("--jobs must be 1–2000 and --concurrency 1–200")

    api_url = loopback_api_url()
    samples = photos()
    images = [samples[index % len(samples)] for index in range(args.jobs)]
    print(f"load: {args.jobs} jobs, {args.concurrency} clients, against {api_url}", file=sys.stderr)
    numbers = load(api_url, images, args.concurrency, args.timeout)
    print(f"rembg: the same {args.jobs} images, sequentially, in-process", file=sys.stderr)
    numbers.update(rembg_baseline(images))
    numbers["ratio"] = round(numbers["throughput_per_min"] / numbers["rembg_throughput_per_min"], 3)

    print(
        f"submit latency (POST + PUT)  p50 {numbers['submit_p50_s']} s  p95 {numbers['submit_p95_s']} s  "
        f"p99 {numbers['submit_p99_s']} s"
    )
    print(
        f"end-to-end latency           p50 {numbers['e2e_p50_s']} s  p95 {numbers['e2e_p95_s']} s  "
        f"p99 {numbers['e2e_p99_s']} s"
    )
    print(
        f"throughput                   {numbers['throughput_per_min']} images/min "
        f"({numbers['succeeded']}/{numbers['jobs']} succeeded in {numbers['elapsed_s']} s)"
    )
    print(
        f"rembg in-process, sequential {numbers['rembg_throughput_per_min']} images/min "
        f"(stack/rembg = {numbers['ratio']})"
    )
    print(f"errors by kind               {numbers['errors'] or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    scalars = {key: value for key, value in numbers.items() if key != "errors"}
    print(" ".join(f"{key}={value}" for key, value in scalars.items()))
    if numbers["lost"]:
        print(f"FAIL: {numbers['lost']} uploaded job(s) never reached a terminal state", file=sys.stderr)
    return 1 if numbers["lost"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
