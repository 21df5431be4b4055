#!/usr/bin/env python3
"""Our inference path against rembg with the same model (u2netp), measured in one run.

For 0.26, 2 and 12 MP JPEGs (a real photo scaled up): the median time from JPEG bytes to
PNG bytes, ours also pinned to one core (one vCPU, as Lambda at 1,769 MB: bench/cost.py's
memory setting comes from the two); cold start (imports + session) in a fresh interpreter; peak RSS; and the size of
a fresh venv holding only the inference image's requirements. Each side runs in its own
subprocess so one's memory and caches cannot flatter the other. Then, at 2 and 12 MP, what output
options cost: ours with each of OPTION_VARIANTS against the default path (png, no options),
interleaved run by run in the same worker; and where ours spends its time, step by step (decode,
model input, ONNX run, mask upscale, cut-out, PNG encode). Last, per model a job may name (cutout.models): cold
start, median time at each size and peak RSS, each model in a fresh interpreter of its own.
Nothing is asserted.

  .venv/bin/python bench/inference.py [--repeats N] [--skip-venv]

Last line: speedup_2mp=<x> speedup_12mp=<y> cold_start_s=<z>
"""

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(os.environ.get("CUTOUT_MODEL_DIR") or ROOT / "models")
REQUIREMENTS = ROOT / "functions" / "inference" / "requirements.txt"
PHOTO = ROOT / "tests" / "data" / "coffee.png"
# (label, width, height): the photo's 3:2 shape at about 0.26, 2 and 12 megapixels.
SIZES = [("0.26MP", 624, 416), ("2MP", 1728, 1152), ("12MP", 4242, 2828)]
# Request `output` objects; "png" (no options) is the default path the others are measured against.
OPTION_VARIANTS = {
    "png": {},
    "jpeg+bg_color": {"format": "jpeg", "bg_color": "#FFFFFF"},
    "crop+5%": {"crop": True, "crop_margin": "5%"},
}
OPTION_SIZES = ["2MP", "12MP"]

ONE_VCPU = "ours-1vcpu"
COLD_START = {
    "ours": (
        "import os\nfrom cutout_inference.engine import BackgroundRemover\n"
        "BackgroundRemover.for_model('u2netp', os.environ['CUTOUT_MODEL_DIR']).networks[0]"
    ),
    "rembg": "from rembg import new_session, remove\nnew_session('u2netp')",
}


def jpeg_inputs() -> dict[str, bytes]:
    from PIL import Image

    photo = Image.open(PHOTO).convert("RGB")
    inputs = {}
    for label, width, height in SIZES:
        buffer = io.BytesIO()
        photo.resize((width, height), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
        inputs[label] = buffer.getvalue()
    return inputs


def worker_environment() -> dict[str, str]:
    return {
        **os.environ,
        "CUTOUT_MODEL_DIR": str(MODEL_DIR),
        "U2NET_HOME": str(MODEL_DIR),
    }


def timing_worker(side: str) -> None:
    """In a subprocess, for one side: reads a size label (and, for ours, an OPTION_VARIANTS name)
    a line, runs it once, answers the seconds and output bytes; answers its peak RSS on "rss".
    The parent interleaves the sides run by run, so load from elsewhere on the machine falls
    on all alike. ONE_VCPU is ours pinned to one core (one ONNX thread), as Lambda at 1,769 MB."""
    if side == ONE_VCPU:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if side in ("ours", ONE_VCPU):
        from cutout.output import OutputOptions
        from cutout_inference.engine import BackgroundRemover

        remover = BackgroundRemover.for_model("u2netp", os.environ["CUTOUT_MODEL_DIR"])
        options = {name: OutputOptions.from_request(output) for name, output in OPTION_VARIANTS.items()}

        def run(data: bytes, variant: str = "png") -> bytes:
            return remover.remove_background(data, options[variant]).body

        def stages(data: bytes) -> dict[str, float]:
            return stage_seconds(remover, data)
    else:
        from rembg import new_session, remove

        session = new_session("u2netp")

        def run(data: bytes) -> bytes:
            return remove(data, session=session)

    inputs = jpeg_inputs()
    for command in sys.stdin:
        command = command.strip()
        if command == "rss":
            answer = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        elif command.startswith("stages "):
            answer = stages(inputs[command.split()[1]])
        else:
            label, *variant = command.split()
            started = time.perf_counter()
            output = run(inputs[label], *variant)
            answer = {"seconds": time.perf_counter() - started, "bytes": len(output)}
        print(json.dumps(answer), flush=True)


STAGES = ("decode", "model input", "ONNX run", "mask upscale", "cut-out", "PNG encode")


def stage_seconds(remover, data: bytes) -> dict[str, float]:
    """The default path (PNG, no options) of a one-network model, one step at a time, as
    BackgroundRemover.remove_background runs it; seconds per STAGES name."""
    import numpy as np
    from PIL import Image

    from cutout_inference.engine import RESAMPLING, cut_out, decode_image, encode_png

    (network,) = remover.networks
    seconds, started = {}, time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal started
        now = time.perf_counter()
        seconds[stage], started = now - started, now

    rgb, _ = decode_image(data)
    lap("decode")
    model_input = network.model_input(rgb)
    lap("model input")
    mask, _ = network.predict(model_input)
    lap("ONNX run")
    alpha = Image.fromarray((mask * 255).astype(np.uint8), mode="L").resize(rgb.size, RESAMPLING)
    lap("mask upscale")
    image = cut_out(rgb, alpha)
    lap("cut-out")
    encode_png(image)
    lap("PNG encode")
    return seconds


def stage_timings(worker: "Worker", repeats: int) -> dict[str, dict[str, float]]:
    """Per size: the median seconds of each of STAGES."""
    timings = {}
    for label, _, _ in SIZES:
        worker.ask(f"stages {label}")  # warm-up
        runs = [worker.ask(f"stages {label}") for _ in range(repeats)]
        timings[label] = {stage: statistics.median(run[stage] for run in runs) for stage in STAGES}
    return timings


class Worker:
    def __init__(self, side: str):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", side],
            env=worker_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def run_timings(repeats: int) -> dict:
    """Per side: median seconds and output bytes per size, and peak RSS (12 MP runs last)."""
    workers = {side: Worker(side) for side in (*COLD_START, ONE_VCPU)}
    results = {side: {"median_s": {}, "output_bytes": {}} for side in workers}
    try:
        for label, _, _ in SIZES:
            for worker in workers.values():
                worker.ask(label)  # warm-up: first-run allocations belong to cold start
            runs = {side: [] for side in workers}
            for _ in range(repeats):
                for side, worker in workers.items():
                    runs[side].append(worker.ask(label))
            for side, answers in runs.items():
                results[side]["median_s"][label] = statistics.median(a["seconds"] for a in answers)
                results[side]["output_bytes"][label] = answers[-1]["bytes"]
        for side, worker in workers.items():
            results[side]["peak_rss_mb"] = worker.ask("rss")["peak_rss_mb"]
        results["options"] = option_timings(workers["ours"], repeats)
        results["stages"] = stage_timings(workers["ours"], repeats)
    finally:
        for worker in workers.values():
            worker.close()
    return results


def option_timings(worker: "Worker", repeats: int) -> dict:
    """Per OPTION_SIZES label and variant: median seconds and output bytes, variants interleaved."""
    timings = {}
    for label in OPTION_SIZES:
        runs = {variant: [] for variant in OPTION_VARIANTS}
        for variant in OPTION_VARIANTS:
            worker.ask(f"{label} {variant}")  # warm-up
        for _ in range(repeats):
            for variant in OPTION_VARIANTS:
                runs[variant].append(worker.ask(f"{label} {variant}"))
        timings[label] = {
            variant: {"median_s": statistics.median(a["seconds"] for a in answers), "bytes": answers[-1]["bytes"]}
            for variant, answers in runs.items()
        }
    return timings


def cold_start_s(side: str, tries: int = 3) -> float:
    """Median wall time of imports + session creation in a fresh interpreter."""
    code = f"import time\nstarted = time.perf_counter()\n{COLD_START[side]}\nprint(time.perf_counter() - started)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=worker_environment(), capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(tries + 1)
    ]
    # The first interpreter also pays for cold page caches (and numba compiling, for rembg).
    return statistics.median(runs[1:])


def model_worker(model: str, repeats: int) -> None:
    """In a fresh interpreter: one model's cold start (imports + its sessions), its median seconds
    per size, then its peak RSS, as one JSON line."""
    started = time.perf_counter()
    from cutout.output import OutputOptions
    from cutout_inference.engine import BackgroundRemover

    remover = BackgroundRemover.for_model(model, os.environ["CUTOUT_MODEL_DIR"])
    cold_start = time.perf_counter() - started
    options = OutputOptions()
    median_s = {}
    for label, data in jpeg_inputs().items():
        remover.remove_background(data, options)  # warm-up
        runs = []
        for _ in range(repeats):
            run_started = time.perf_counter()
            remover.remove_background(data, options)
            runs.append(time.perf_counter() - run_started)
        median_s[label] = statistics.median(runs)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cold_start_s": cold_start, "median_s": median_s, "peak_rss_mb": peak_rss_mb}))


def every_model_worker() -> None:
    """In a fresh interpreter: what one container holds once it has served every model (each run
    once at every size): the sessions' cold start together and the peak RSS."""
    started = time.perf_counter()
    from cutout.models import MODELS
    from cutout.output import OutputOptions
    from cutout_inference.engine import BackgroundRemover

    removers = [BackgroundRemover.for_model(model, os.environ["CUTOUT_MODEL_DIR"]) for model in MODELS]
    cold_start = time.perf_counter() - started
    for data in jpeg_inputs().values():
        for remover in removers:
            remover.remove_background(data, OutputOptions())
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cold_start_s": cold_start, "peak_rss_mb": peak_rss_mb}))


EVERY_MODEL = "every model"


def model_profiles(repeats: int) -> dict[str, dict]:
    """Per model, and for every model in one process, from a fresh interpreter each."""
    from cutout.models import MODELS

    def profile(*worker_arguments: str) -> dict:
        command = [sys.executable, __file__, *worker_arguments, "--repeats", str(repeats)]
        done = subprocess.run(command, env=worker_environment(), capture_output=True, text=True, check=True)
        return json.loads(done.stdout.splitlines()[-1])

    return {
        **{model: profile("--model-worker", model) for model in MODELS},
        EVERY_MODEL: profile("--every-model-worker"),
    }


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def fresh_venv_mb() -> tuple[float, float]:
    """Size of a venv holding only the image's requirements, and how much of it is botocore
    (pulled in by aws-xray-sdk, Tracer's dependency; the Lambda base image ships its own)."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        # Without pip of its own: the image's base has pip already, so it is not ours to count.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv / "bin" / "python"),
                "install",
                "--quiet",
                "-r",
                str(REQUIREMENTS),
            ],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        (site_packages,) = venv.glob("lib/python*/site-packages")
        return directory_mb(venv), directory_mb(site_packages / "botocore")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-venv", action="store_true", help="skip building the fresh venv")
    parser.add_argument("--worker", choices=sorted({*COLD_START, ONE_VCPU}), help=argparse.SUPPRESS)
    parser.add_argument("--model-worker", help=argparse.SUPPRESS)
    parser.add_argument("--every-model-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (bench/run_all.py)")
    args = parser.parse_args()
    if args.worker:
        timing_worker(args.worker)
        return
    if args.model_worker:
        model_worker(args.model_worker, args.repeats)
        return
    if args.every_model_worker:
        every_model_worker()
        return

    print(f"machine: {len(os.sched_getaffinity(0))} vCPUs; model u2netp; input {PHOTO.name} scaled, JPEG q90")
    results = run_timings(args.repeats)
    print(
        f"{'size':>7} {'ours ms':>9} {'rembg ms':>9} {'speedup':>8} {'ours PNG KB':>12} {'rembg PNG KB':>13}"
        f" {'ours 1 vCPU ms':>15}"
    )
    speedups = {}
    for label, _, _ in SIZES:
        ours, theirs = results["ours"]["median_s"][label], results["rembg"]["median_s"][label]
        speedups[label] = theirs / ours
        print(
            f"{label:>7} {ours * 1000:9.0f} {theirs * 1000:9.0f} {speedups[label]:7.2f}x"
            f" {results['ours']['output_bytes'][label] / 1024:12.0f}"
            f" {results['rembg']['output_bytes'][label] / 1024:13.0f}"
            f" {results[ONE_VCPU]['median_s'][label] * 1000:15.0f}"
        )
    print(
        f"peak RSS (all sizes, 12 MP last): ours {results['ours']['peak_rss_mb']:.0f} MB,"
        f" rembg {results['rembg']['peak_rss_mb']:.0f} MB"
    )
    print(f"{'size':>7} {'output options':>15} {'ms':>7} {'vs png':>7} {'KB':>7}")
    for label, variants in results["options"].items():
        default_s = variants["png"]["median_s"]
        for variant, timing in variants.items():
            print(
                f"{label:>7} {variant:>15} {timing['median_s'] * 1000:7.0f} {timing['median_s'] / default_s:6.2f}x"
                f" {timing['bytes'] / 1024:7.0f}"
            )
    print("where ours spends its time (u2netp, JPEG → PNG, medians of each step, ms):")
    print(f"{'size':>7}" + "".join(f" {stage:>12}" for stage in STAGES) + f" {'total':>7} {'total / ONNX':>12}")
    for label, stages in results["stages"].items():
        total = sum(stages.values())
        print(
            f"{label:>7}"
            + "".join(f" {stages[stage] * 1000:12.0f}" for stage in STAGES)
            + f" {total * 1000:7.0f} {total / stages['ONNX run']:11.2f}x"
        )
    cold = {side: cold_start_s(side) for side in COLD_START}
    print(
        f"cold start (imports + session, median of 3 fresh interpreters): ours {cold['ours']:.2f} s,"
        f" rembg {cold['rembg']:.2f} s"
    )
    profiles = model_profiles(args.repeats)
    together = profiles.pop(EVERY_MODEL)
    print("per model, each in a fresh interpreter (png output; cold start = imports + sessions):")
    print(
        f"{'model':>10} {'cold start s':>13}"
        + "".join(f" {label + ' ms':>10}" for label, _, _ in SIZES)
        + " peak RSS MB"
    )
    for model, profile in profiles.items():
        timings = "".join(f" {profile['median_s'][label] * 1000:10.0f}" for label, _, _ in SIZES)
        print(f"{model:>10} {profile['cold_start_s']:13.2f}{timings} {profile['peak_rss_mb']:11.0f}")
    print(
        f"every model in one process (a warm container that served them all): cold start"
        f" {together['cold_start_s']:.2f} s, peak RSS {together['peak_rss_mb']:.0f} MB"
    )
    venv_mb = botocore_mb = None
    if not args.skip_venv:
        venv_mb, botocore_mb = fresh_venv_mb()
        print(
            f"fresh venv from {REQUIREMENTS.relative_to(ROOT)}: {venv_mb:.0f} MB"
            f" ({venv_mb - botocore_mb:.0f} MB without botocore, {botocore_mb:.0f} MB)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "ours_ms": {label: s * 1000 for label, s in results["ours"]["median_s"].items()},
                    "rembg_ms": {label: s * 1000 for label, s in results["rembg"]["median_s"].items()},
                    "ours_one_vcpu_ms": {label: s * 1000 for label, s in results[ONE_VCPU]["median_s"].items()},
                    "speedup": speedups,
                    "peak_rss_mb": {side: results[side]["peak_rss_mb"] for side in COLD_START},
                    "options_ms": {
                        label: {variant: timing["median_s"] * 1000 for variant, timing in variants.items()}
                        for label, variants in results["options"].items()
                    },
                    "stages_ms": {
                        label: {stage: seconds * 1000 for stage, seconds in stages.items()}
                        for label, stages in results["stages"].items()
                    },
                    "cold_start_s": cold,
                    "models": profiles,
                    "every_model": together,
                    "venv_mb": venv_mb,
                    "venv_botocore_mb": botocore_mb,
                },
                indent=2,
            )
        )
    print(f"speedup_2mp={speedups['2MP']:.2f} speedup_12mp={speedups['12MP']:.2f} cold_start_s={cold['ours']:.2f}")


if __name__ == "__main__":
    main()
