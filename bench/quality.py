#!/usr/bin/env python3
"""Cutout quality against human masks: MAE, IoU and F-beta of predicted alphas, per source and overall.

Reads a labelled set laid out as ``<dir>/<source>/images/<stem>.jpg|png``, ``<dir>/<source>/masks/<stem>.png``
and optionally ``<dir>/<source>/void/<stem>.png`` (255 = unlabelled: left out of every score), e.g.
``../shared/quality/dev``. The set is only ever read from the path given; it never belongs in the repository.
Each predictor gets the decoded RGB photo and returns an 8-bit alpha at the photo's size; its time is the
median over the set of the predict call alone (decoding and scoring excluded).

  .venv/bin/python -m bench.quality --data ../shared/quality/dev [--models u2netp,u2net] [--rembg]
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
    median_ms: float

    def summary_row(self, name: str) -> str:
        o = self.overall
        return f"| {name} | {o.mae:.4f} | {o.iou:.3f} | {o.f_beta:.3f} | {self.median_ms:.0f} |"

    def source_row(self, name: str) -> str:
        cells = " | ".join(f"{s.iou:.3f} / {s.mae:.3f}" for s in self.by_source.values())
        return f"| {name} | {cells} |"


def markdown(reports: dict[str, Report]) -> str:
    """Two tables: overall scores and time per model, then IoU / MAE per source."""
    sources = list(next(iter(reports.values())).by_source)
    lines = ["| model | MAE | IoU | F-beta | model ms |", "|---|---|---|---|---|"]
    lines += [report.summary_row(name) for name, report in reports.items()]
    lines += ["", f"| IoU / MAE | {' | '.join(sources)} |", "|---" * (len(sources) + 1) + "|"]
    lines += [report.source_row(name) for name, report in reports.items()]
    return "\n".join(lines)


def read_gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def evaluate(predict: Predictor, pairs: list[Pair]) -> Report:
    scores: dict[str, list[Scores]] = {}
    times_ms = []
    for pair in pairs:
        with Image.open(pair.image) as image:
            rgb = image.convert("RGB")
        start = time.perf_counter()
        alpha = predict(rgb)
        times_ms.append((time.perf_counter() - start) * 1000)
        mask = read_gray(pair.mask)
        if alpha.size != rgb.size or alpha.mode != "L":
            raise ValueError(f"{pair.source}/{pair.stem}: predicted {alpha.mode} {alpha.size}, want L {rgb.size}")
        void = read_gray(pair.void) == VOID_LEVEL if pair.void else None
        scores.setdefault(pair.source, []).append(score(np.asarray(alpha), mask, void))
    return Report(
        overall=Scores.mean(s for source in scores.values() for s in source),
        by_source={source: Scores.mean(source_scores) for source, source_scores in scores.items()},
        median_ms=statistics.median(times_ms),
    )


def engine_predictor(model: str, model_dir: Path) -> Predictor:
    from cutout_inference.engine import BackgroundRemover

    return BackgroundRemover.for_model(model, model_dir).predict_alpha


def rembg_predictor(model_dir: Path) -> Predictor:
    """rembg 2.0.86 with u2netp, as a reference; it finds the model file under U2NET_HOME and never downloads."""
    os.environ["U2NET_HOME"] = str(model_dir)
    from rembg import new_session, remove

    session = new_session("u2netp")
    return lambda rgb: remove(rgb, session=session, only_mask=True)


def predictors(models: list[str], with_rembg: bool, model_dir: Path) -> dict[str, Predictor]:
    named = {model: engine_predictor(model, model_dir) for model in models}
    if with_rembg:
        named["rembg u2netp"] = rembg_predictor(model_dir)
    return named


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the labelled set, e.g. ../shared/quality/dev")
    parser.add_argument("--models", default="u2netp", help="comma-separated models (cutout.models) to evaluate")
    parser.add_argument("--rembg", action="store_true", help="also rembg with u2netp, as a reference")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("CUTOUT_MODEL_DIR") or ROOT / "models"))
    args = parser.parse_args(argv)
    pairs = load_pairs(args.data)
    named = predictors(args.models.split(","), args.rembg, args.model_dir)
    reports = {name: evaluate(predict, pairs) for name, predict in named.items()}
    print(f"{len(pairs)} pairs from {args.data}\n")
    print(markdown(reports))


if __name__ == "__main__":
    main()
