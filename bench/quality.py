#!/usr/bin/env python3
"""Cutout quality against human masks: MAE, IoU and F-beta of predicted alphas, per source and overall.

Reads a labelled set laid out as ``<dir>/<source>/images/<stem>.jpg|png``, ``<dir>/<source>/masks/<stem>.png``
and optionally ``<dir>/<source>/void/<stem>.png`` (255 = unlabelled: left out of every score), e.g.
``../shared/quality/dev``. The set is only ever read from the path given; it never belongs in the repository.
Every model of ``cutout.models`` (or those ``--models`` names) runs through the engine, and rembg runs
each model that is one of its networks as it runs it, as the reference; all take turns on each pair.
Times are medians: "mask ms" of the mask alone from the decoded photo (model input, networks, upscale,
refinement), "pipeline ms" from the photo's bytes to the encoded PNG cutout, on every tenth pair.
With ``--api URL`` the same set goes through a deployed stack instead (each photo a job asking for the
mask, timed from the POST to the downloaded mask): how the product is judged on a held-out split.

  .venv/bin/python -m bench.quality --data ../shared/quality/dev [--models general,u2netp] [--no-rembg]
  .venv/bin/python -m bench.quality --data DIR --api "$(jq -r .api_url .local/stack.json)"
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = (".jpg", ".png")
# F-beta's usual weight in saliency benchmarks (Achanta et al.): precision counts more than recall.
BETA_SQUARED = 0.3
# Alpha and mask levels at or above this are foreground for IoU and F-beta.
FOREGROUND_LEVEL = 128
VOID_LEVEL = 255

Predictor = Callable[[Image.Image], Image.Image]


@dataclass(frozen=True)
class Pair:
    source: str
    stem: str
    image: Path
    mask: Path
    void: Path | None


@dataclass(frozen=True)
class Scores:
    mae: float
    iou: float
    f_beta: float

    @classmethod
    def mean(cls, scores: Iterable["Scores"]) -> "Scores":
        scores = list(scores)
        return cls(*(float(np.mean([getattr(s, field) for s in scores])) for field in ("mae", "iou", "f_beta")))


def load_pairs(data_dir: Path) -> list[Pair]:
    """Every photo that has a mask, sorted by source and stem."""
    pairs = []
    for source_dir in sorted(path for path in data_dir.iterdir() if path.is_dir()):
        for image in sorted(path for path in (source_dir / "images").iterdir() if path.suffix in IMAGE_SUFFIXES):
            mask = source_dir / "masks" / f"{image.stem}.png"
            if not mask.is_file():
                continue
            void = source_dir / "void" / f"{image.stem}.png"
            pairs.append(Pair(source_dir.name, image.stem, image, mask, void if void.is_file() else None))
    return pairs


def score(alpha: np.ndarray, mask: np.ndarray, void: np.ndarray | None = None) -> Scores:
    """The alpha (uint8) against the mask (uint8) of the same shape, over the pixels void leaves in."""
    keep = np.ones(mask.shape, dtype=bool) if void is None else ~void
    alpha, mask = alpha[keep], mask[keep]
    mae = float(np.mean(np.abs(alpha.astype(np.float32) - mask.astype(np.float32))) / 255) if mask.size else 0.0
    predicted, truth = alpha >= FOREGROUND_LEVEL, mask >= FOREGROUND_LEVEL
    hits = int(np.count_nonzero(predicted & truth))
    predicted_count, truth_count = int(np.count_nonzero(predicted)), int(np.count_nonzero(truth))
    union = predicted_count + truth_count - hits
    # Nothing predicted where there is nothing to find is a perfect answer (1 for both); otherwise a
    # prediction that hits no foreground pixel scores 0, whichever of precision or recall is undefined.
    if union == 0:
        return Scores(mae, 1.0, 1.0)
    if hits == 0:
        return Scores(mae, 0.0, 0.0)
    precision, recall = hits / predicted_count, hits / truth_count
    f_beta = (1 + BETA_SQUARED) * precision * recall / (BETA_SQUARED * precision + recall)
    return Scores(mae, hits / union, f_beta)


@dataclass(frozen=True)
class Report:
    overall: Scores  # the mean over all pairs, so larger sources weigh more
    by_source: dict[str, Scores]
    mask_ms: float  # median time of the mask alone: model input, networks, upscale, refinement
    pipeline_ms: float | None  # median time from image bytes to the encoded PNG cutout

    def summary_row(self, name: str) -> str:
        o = self.overall
        pipeline = "" if self.pipeline_ms is None else f"{self.pipeline_ms:.0f}"
        return f"| {name} | {o.mae:.4f} | {o.iou:.3f} | {o.f_beta:.3f} | {self.mask_ms:.0f} | {pipeline} |"

    def source_row(self, name: str) -> str:
        cells = " | ".join(f"{s.iou:.3f} / {s.mae:.3f}" for s in self.by_source.values())
        return f"| {name} | {cells} |"


def markdown(reports: dict[str, Report]) -> str:
    """Two tables: overall scores and times per model, then IoU / MAE per source."""
    sources = list(next(iter(reports.values())).by_source)
    lines = ["| model | MAE | IoU | F-beta | mask ms | pipeline ms |", "|---|---|---|---|---|---|"]
    lines += [report.summary_row(name) for name, report in reports.items()]
    lines += ["", f"| IoU / MAE | {' | '.join(sources)} |", "|---" * (len(sources) + 1) + "|"]
    lines += [report.source_row(name) for name, report in reports.items()]
    return "\n".join(lines)


def read_gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


@dataclass(frozen=True)
class Contender:
    """What is scored: the mask from an RGB photo, and (where it has one) the whole pipeline from
    the photo's bytes to an encoded cutout, timed on a sample of the pairs."""

    predict: Predictor
    pipeline: Callable[[bytes], bytes] | None = None


# The whole pipeline is timed on every PIPELINE_SAMPLE-th pair: it is the mask plus decoding and
# encoding, which depend on the image's size, not on what it shows.
PIPELINE_SAMPLE = 10


def timed_ms(call: Callable, *arguments) -> tuple[float, object]:
    started = time.perf_counter()
    answer = call(*arguments)
    return (time.perf_counter() - started) * 1000, answer


def evaluate(contenders: dict[str, Contender], pairs: list[Pair]) -> dict[str, Report]:
    """Every contender on every pair, taking turns pair by pair, so load from elsewhere on the
    machine falls on all alike."""
    scores: dict[str, dict[str, list[Scores]]] = {name: {} for name in contenders}
    mask_ms: dict[str, list[float]] = {name: [] for name in contenders}
    pipeline_ms: dict[str, list[float]] = {name: [] for name in contenders}
    for index, pair in enumerate(pairs):
        data = pair.image.read_bytes()
        with Image.open(pair.image) as image:
            rgb = image.convert("RGB")
        mask = read_gray(pair.mask)
        void = read_gray(pair.void) == VOID_LEVEL if pair.void else None
        for name, contender in contenders.items():
            elapsed_ms, alpha = timed_ms(contender.predict, rgb)
            mask_ms[name].append(elapsed_ms)
            if alpha.size != rgb.size or alpha.mode != "L":
                raise ValueError(f"{pair.source}/{pair.stem}: {name} gave {alpha.mode} {alpha.size}, want L {rgb.size}")
            scores[name].setdefault(pair.source, []).append(score(np.asarray(alpha), mask, void))
            if contender.pipeline and index % PIPELINE_SAMPLE == 0:
                pipeline_ms[name].append(timed_ms(contender.pipeline, data)[0])
    return {
        name: Report(
            overall=Scores.mean(s for source in scores[name].values() for s in source),
            by_source={source: Scores.mean(source_scores) for source, source_scores in scores[name].items()},
            mask_ms=statistics.median(mask_ms[name]),
            pipeline_ms=statistics.median(pipeline_ms[name]) if pipeline_ms[name] else None,
        )
        for name in contenders
    }


def engine_contender(model: str, model_dir: Path) -> Contender:
    from cutout.output import OutputOptions
    from cutout_inference.engine import BackgroundRemover

    remover = BackgroundRemover.for_model(model, model_dir)
    return Contender(remover.predict_alpha, lambda data: remover.remove_background(data, OutputOptions()).body)


def rembg_contender(model: str, model_dir: Path) -> Contender:
    """rembg 2.0.86 with the same network; it finds the file under U2NET_HOME and never downloads."""
    os.environ["U2NET_HOME"] = str(model_dir)
    from rembg import new_session, remove

    session = new_session(model)
    return Contender(
        lambda rgb: remove(rgb, session=session, only_mask=True), lambda data: remove(data, session=session)
    )


def rembg_references(models: list[str]) -> list[str]:
    """The models that are one of rembg's networks as rembg runs it (no refinement): rembg is their reference."""
    from cutout.models import MODELS, REMBG_RELEASED

    return [
        model
        for model in models
        if MODELS[model].stretch is None
        and len(MODELS[model].networks) == 1
        and MODELS[model].networks[0] in REMBG_RELEASED
    ]


def stack_contender(api_url: str, model: str) -> Contender:
    """The deployed stack: each photo submitted as a PNG job asking for the mask, timed from the
    POST to the downloaded mask (what a client waits, polling included)."""
    import tempfile

    from cutout_cli.api import CutoutApi

    api = CutoutApi(api_url)

    def predict(rgb: Image.Image) -> Image.Image:
        with tempfile.TemporaryDirectory() as folder:
            upload, result = Path(folder) / "photo.png", Path(folder) / "mask.png"
            rgb.save(upload)
            job = api.create_job("image/png", upload.stat().st_size, upload.name, {"format": "mask"}, model)
            api.upload(job["upload"], upload, lambda sent: None)
            done = api.wait_for_job(job["job_id"], time.monotonic() + 300, lambda job: None)
            if done["status"] != "succeeded":
                raise RuntimeError(f"job {done['job_id']} ended {done['status']}: {done['error']}")
            api.download(done["result"]["url"], result)
            with Image.open(result) as mask:
                return mask.convert("L")

    return Contender(predict)


def main(argv: list[str] | None = None) -> None:
    from cutout.models import MODELS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the labelled set, e.g. ../shared/quality/dev")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models (default: all)")
    parser.add_argument("--no-rembg", action="store_true", help="leave out rembg's runs of the same networks")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("CUTOUT_MODEL_DIR") or ROOT / "models"))
    parser.add_argument("--api", help="score a deployed stack at this API URL instead (e.g. `make up`'s api_url)")
    args = parser.parse_args(argv)
    pairs = load_pairs(args.data)
    models = args.models.split(",")
    if args.api:
        contenders = {f"{model} (deployed)": stack_contender(args.api, model) for model in models}
    else:
        contenders = {model: engine_contender(model, args.model_dir) for model in models}
        if not args.no_rembg:
            contenders |= {
                f"rembg {model}": rembg_contender(model, args.model_dir) for model in rembg_references(models)
            }
    print(f"{len(pairs)} pairs from {args.data}; each contender in turn on each pair\n")
    print(markdown(evaluate(contenders, pairs)))


if __name__ == "__main__":
    main()
