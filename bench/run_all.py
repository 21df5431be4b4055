"""Run every benchmark, then write their table and the cost model into README.md.

  .venv/bin/python bench/run_all.py [--quick] [--load]

Each benchmark prints its own report (kept in bench/results/<name>.txt) and its numbers as JSON;
this script reads the JSON, builds one table with the machine it ran on, and replaces the part of
README.md between the `bench:start` and `bench:end` markers. --load also runs bench/load.py
against the local stack (`make up` first).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import cost

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def run(name: str, *args: str) -> dict:
    """Run bench/<name>.py, echo and keep its report, return its JSON numbers."""
    numbers = RESULTS / f"{name}.json"
    report = RESULTS / f"{name}.txt"
    print(f"== bench/{name}.py {' '.join(args)}", flush=True)
    with report.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / f"{name}.py"), *args, "--json", str(numbers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        for line in process.stdout:
            print(line, end="", flush=True)
            out.write(line)
    if process.wait() != 0:
        raise SystemExit(f"bench/{name}.py failed: see {report}")
    return json.loads(numbers.read_text())


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{len(os.sched_getaffinity(0))} vCPUs ({cpu}), {memory_gib:.0f} GiB, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d', time.gmtime())}"
    )


def table(api: dict, normalize: dict, inference: dict, load: dict | None) -> str:
    api_rows = [
        ("post", "API `POST /v1/jobs`, warm, in-process vs moto"),
        ("get", "API `GET /v1/jobs/{id}`, same"),
        ("post_new_idempotency_key", "API `POST /v1/jobs` with a new `Idempotency-Key`"),
        ("post_idempotent_replay", "API `POST /v1/jobs` replaying an `Idempotency-Key`"),
        ("post_batch", "API `POST /v1/batches`, 100 jobs"),
        ("get_batch", "API `GET /v1/batches/{id}`, 100 jobs"),
    ]
    rows = [
        (
            label,
            f"p50 {api[key]['total_p50_ms']:.1f} ms, p99 {api[key]['total_p99_ms']:.1f} ms",
            f"our code p99 {api[key]['ours_p99_ms']:.2f} ms ({1 - api[key]['sdk_share']:.0%} of the time)",
        )
        for key, label in api_rows
    ]
    for name, label in [("2mp_jpeg", "2 MP JPEG"), ("12mp_jpeg", "12 MP JPEG"), ("12mp_png", "12 MP PNG")]:
        row = normalize[name]
        rows.append(
            (
                f"normalize {label} (vs naive Pillow)",
                f"{row['ours_ms']:.0f} ms vs {row['naive_ms']:.0f} ms",
                f"**{row['speedup']:.1f}×**",
            )
        )
    for size in ("0.26MP", "2MP", "12MP"):
        rows.append(
            (
                f"inference {size} JPEG → PNG (vs `rembg.remove`)",
                f"{inference['ours_ms'][size]:.0f} ms vs {inference['rembg_ms'][size]:.0f} ms",
                f"**{inference['speedup'][size]:.2f}×**",
            )
        )
    for size in ("2MP", "12MP"):
        stages = inference["stages_ms"][size]
        rows.append(
            (
                f"inference {size} JPEG → PNG, step by step (ms)",
                ", ".join(f"{stage} {ms:.0f}" for stage, ms in stages.items()),
                f"{sum(stages.values()) / stages['ONNX run']:.2f}× the ONNX run alone",
            )
        )
    cold = inference["cold_start_s"]
    rows.append(
        (
            "inference cold start (imports + session)",
            f"{cold['ours']:.2f} s vs {cold['rembg']:.2f} s",
            f"{cold['rembg'] / cold['ours']:.1f}×",
        )
    )
    rss = inference["peak_rss_mb"]
    rows.append(("inference peak RSS, 12 MP last", f"{rss['ours']:.0f} MB vs {rss['rembg']:.0f} MB", ""))
    u2netp_2mp_s = inference["models"]["u2netp"]["median_s"]["2MP"]
    for model, profile in inference["models"].items():
        rows.append(
            (
                f"model `{model}`: 2 MP / 12 MP JPEG → PNG, cold start, peak RSS",
                f"{profile['median_s']['2MP'] * 1000:.0f} / {profile['median_s']['12MP'] * 1000:.0f} ms,"
                f" {profile['cold_start_s']:.2f} s, {profile['peak_rss_mb']:.0f} MB",
                f"{profile['median_s']['2MP'] / u2netp_2mp_s:.2f}× u2netp's time at 2 MP",
            )
        )
    every = inference["every_model"]
    rows.append(
        (
            "every model in one container",
            f"cold start {every['cold_start_s']:.2f} s, peak RSS {every['peak_rss_mb']:.0f} MB",
            "",
        )
    )
    if inference.get("venv_mb"):
        rows.append(
            (
                "inference image's packages (fresh venv)",
                f"{inference['venv_mb']:.0f} MB",
                f"{inference['venv_mb'] - inference['venv_botocore_mb']:.0f} MB"
                " without the botocore the base image ships",
            )
        )
    if load:
        rows.append(
            (
                f"load: {load['jobs']} jobs through the local stack",
                f"{load['throughput_per_min']:.0f} images/min, end-to-end p50 {load['e2e_p50_s']:.1f} s",
                f"{load['lost']} lost",
            )
        )
    lines = ["| benchmark | measured | against the baseline |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and no fresh venv build")
    parser.add_argument("--load", action="store_true", help="also run bench/load.py against the local stack")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    repeats = ["--repeats", "3"] if args.quick else []
    api = run("api", "--calls", "300" if args.quick else "1000")
    normalize = run("normalize", *repeats)
    inference = run("inference", *repeats, *(["--skip-venv"] if args.quick else []))
    load = run("load") if args.load else None
    section = "\n".join(
        [
            START,
            f"Measured by `bench/run_all.py` on {machine()}; medians, each against a baseline run in the same process.",
            "",
            table(api, normalize, inference, load),
            "",
            "What 1,000 images cost on AWS (`bench/cost.py`, from the stage times above):",
            "",
            cost.table(RESULTS),
            END,
        ]
    )
    text = README.read_text()
    README.write_text(text[: text.index(START)] + section + text[text.index(END) + len(END) :])
    print("\n" + section)


if __name__ == "__main__":
    main()
