#!/usr/bin/env python3
"""Our normalize image path against a naive Pillow one, measured in the same run.

Inputs are a real photo (tests/data/chelsea.png) scaled up to 2 MP (1632x1224) and 12 MP
(4032x3024, a phone camera's size) with mild sensor-like noise and camera EXIF, saved as
JPEG q92 and as PNG; plus the 12 MP JPEG tagged "rotated" (EXIF orientation 6, how phones
store portrait shots) and a 24 MP JPEG that must be scaled down to the 4096 px cap.
Each time is the median of --repeats runs (ours and naive alternate), bytes in to prepared
bytes out:

  ours   normalize_image.prepare(data, len(data), Settings())
  naive  Image.open, ImageOps.exif_transpose, thumbnail((4096, 4096)), save in the input's
         format with Pillow's defaults

Then the alternatives behind our choices: JPEG draft scale, resize filter, prepared format
(encode + the decode inference pays, and size), and the cost of validating a pass-through
JPEG. Last, the peak RSS of prepare() in a fresh process for the worst inputs the default
limits accept (and the slivers they refuse): every extreme shape in RGB, RGBA, grey and grey +
alpha, 16-bit PNGs, JPEGs and a WebP at the pixel limit, and the largest ICC profile and text
chunks a PNG may carry. The goal is 1 GB each (normalize has 2048 MB). Nothing is asserted.

  .venv/bin/python bench/normalize.py [--repeats N]

Last line: speedup_12mp_jpeg=<x> speedup_2mp_jpeg=<y> ... peak_rss_worst_mb=<z>
"""

import argparse
import io
import json
import statistics
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cutout.settings import Settings
from cutout_normalize.image import JPEG_QUALITY, PNG_COMPRESS_LEVEL, RESIZE_FILTER, prepare
from tests.support.hostile_images import (
    EXTREME_SHAPES,
    black_png,
    encoded,
    png_chunk,
    prepare_in_fresh_process,
    srgb_profile,
)

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = Settings()
SIZES = {"2mp": (1632, 1224), "12mp": (4032, 3024), "24mp": (6000, 4000)}
MB = 1024 * 1024
PEAK_RSS_GOAL_MB = 1024


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def interleaved_medians_ms(first, second, repeats: int) -> tuple[float, float]:
    """Alternate the two so a busy neighbour on a shared machine slows both alike."""
    first_times, second_times = [], []
    for _ in range(repeats):
        first_times.append(median_ms(first, 1))
        second_times.append(median_ms(second, 1))
    return statistics.median(first_times), statistics.median(second_times)


def camera_photo(size: tuple[int, int]) -> Image.Image:
    """The test photo at a camera's size; noise gives it a real photo's entropy (and JPEG size)."""
    upscaled = Image.open(ROOT / "tests/data/chelsea.png").convert("RGB").resize(size, Image.Resampling.LANCZOS)
    noise = np.random.default_rng(0).normal(0, 3, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(upscaled) + noise, 0, 255).astype(np.uint8))


def camera_file(image: Image.Image, image_format: str, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif.update({0x010F: "PhoneMaker", 0x0110: "Phone 12", 0x0112: orientation})
    buffer = io.BytesIO()
    image.save(buffer, image_format, exif=exif, **({"quality": 92} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def naive(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data))
    image_format = image.format
    image = ImageOps.exif_transpose(image)
    image.thumbnail((SETTINGS.max_output_side, SETTINGS.max_output_side))
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def ours(data: bytes) -> bytes:
    return prepare(data, len(data), SETTINGS).body


def compare(inputs: dict[str, bytes], repeats: int) -> dict[str, dict[str, float]]:
    print(f"{'input':<22}{'MB':>6}{'ours ms':>10}{'naive ms':>10}{'speedup':>9}  prepared")
    speedups, timings = {}, {}
    for name, data in inputs.items():
        ours_ms, naive_ms = interleaved_medians_ms(lambda: ours(data), lambda: naive(data), repeats)
        result = prepare(data, len(data), SETTINGS)
        speedups[name] = naive_ms / ours_ms
        timings[name] = {"ours_ms": ours_ms, "naive_ms": naive_ms, "speedup": speedups[name]}
        how = "passed through" if not result.reencoded else "re-encoded"
        print(
            f"{name:<22}{len(data) / 1e6:>6.1f}{ours_ms:>10.0f}{naive_ms:>10.0f}{speedups[name]:>8.1f}x"
            f"  {result.width}x{result.height} {result.content_type}, {how}, {len(result.body) / 1e6:.1f} MB"
        )
    return timings


def draft_scales(data: bytes, repeats: int) -> None:
    """12 MP JPEG capped at 1024 px: decode at each DCT scale, then Lanczos to 1024 px."""
    print("\ndraft scale, 12 MP JPEG -> 1024 px (scale 1/4 decodes 1008 px: below the cap, so upscaled)")
    for scale in (1, 2, 4):

        def run():
            image = Image.open(io.BytesIO(data))
            if scale > 1:
                image.draft("RGB", (image.width // scale, image.height // scale))
            image.resize((1024, 768), RESIZE_FILTER)

        print(f"  1/{scale}: {median_ms(run, repeats):.0f} ms")


def resize_filters(data: bytes, repeats: int) -> None:
    """24 MP JPEG to the 4096 px cap: the draft cannot help (less than 2x), the filter is the cost."""
    print("\nresize filter, 24 MP decoded -> 4096x2731")
    image = Image.open(io.BytesIO(data))
    image.load()
    print(f"  decode alone: {median_ms(lambda: Image.open(io.BytesIO(data)).load(), repeats):.0f} ms")
    for name in ("BILINEAR", "BICUBIC", "LANCZOS"):
        resample = Image.Resampling[name]
        print(f"  {name.lower():<9}{median_ms(lambda: image.resize((4096, 2731), resample), repeats):>6.0f} ms")


def prepared_formats(image: Image.Image, repeats: int) -> None:
    """Written once by normalize, decoded once by inference: both costs count, and the bytes."""
    print("\nprepared format, 12 MP opaque photo: encode ms + decode ms, size")
    candidates = {
        f"JPEG q{JPEG_QUALITY} 4:2:0 (ours)": ("JPEG", {"quality": JPEG_QUALITY}),
        "JPEG q95 4:4:4": ("JPEG", {"quality": 95, "subsampling": 0}),
        "JPEG q90 4:2:0": ("JPEG", {"quality": 90}),
        f"PNG level {PNG_COMPRESS_LEVEL} (ours, alpha only)": ("PNG", {"compress_level": PNG_COMPRESS_LEVEL}),
        "PNG level 6": ("PNG", {"compress_level": 6}),
        "WebP lossless method 0": ("WEBP", {"lossless": True, "quality": 0, "method": 0}),
    }
    for name, (image_format, params) in candidates.items():
        buffer = io.BytesIO()
        encode_ms = median_ms(lambda: image.save(io.BytesIO(), image_format, **params), max(1, repeats // 2))
        image.save(buffer, image_format, **params)
        data = buffer.getvalue()
        decode_ms = median_ms(lambda: Image.open(io.BytesIO(data)).load(), repeats)
        print(f"  {name:<32}{encode_ms:>6.0f} +{decode_ms:>5.0f} ms {len(data) / 1e6:>6.1f} MB")


def pass_through_validation(data: bytes, repeats: int) -> None:
    print("\nvalidating a 12 MP JPEG that passes through")
    print(f"  full decode:        {median_ms(lambda: Image.open(io.BytesIO(data)).load(), repeats):.0f} ms")

    def at_one_eighth():
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (image.width // 8, image.height // 8))
        image.load()

    print(f"  1/8-scale decode:   {median_ms(at_one_eighth, repeats):.0f} ms  (reads every entropy-coded byte)")


def png_with_most_metadata(width: int, height: int) -> bytes:
    """black_png plus the most a PNG may carry besides pixels: an ICC profile of almost the
    upload limit (zero padding, so the whole file still fits it) and 60 MB of text, just
    under Pillow's 64 MB for all text chunks together."""
    icc = srgb_profile().ljust(SETTINGS.max_upload_bytes - MB, b"\0")
    metadata = png_chunk(b"iCCP", b"padded sRGB\0\0" + zlib.compress(icc, 9))
    metadata += png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(bytes(20_000_000), 9)) * 3
    image = black_png(width, height, "RGBA")
    return image[:33] + metadata + image[33:]


def worst_inputs() -> dict[str, bytes]:
    square = EXTREME_SHAPES["square at the pixel limit"]
    inputs = {
        f"PNG {mode} {width}x{height} ({shape})": black_png(width, height, mode)
        for shape, (width, height) in EXTREME_SHAPES.items()
        for mode in ("RGB", "RGBA", "L", "LA")
    }
    inputs |= {f"PNG {mode} 16-bit {square[0]}x{square[1]}": black_png(*square, mode) for mode in ("I;16", "RGBA;16")}
    inputs[f"PNG RGBA {square[0]}x{square[1]} + ICC profile and text at their limits"] = png_with_most_metadata(*square)
    black = {mode: Image.new(mode, square) for mode in ("RGB", "RGBA", "CMYK")}
    inputs[f"JPEG RGB {square[0]}x{square[1]}"] = encoded(black["RGB"], "JPEG")
    inputs[f"JPEG RGB progressive {square[0]}x{square[1]}"] = encoded(black["RGB"], "JPEG", progressive=True)
    inputs[f"JPEG CMYK {square[0]}x{square[1]}"] = encoded(black["CMYK"], "JPEG")
    inputs[f"WebP RGB {square[0]}x{square[1]}"] = encoded(black["RGB"], "WEBP", quality=80)
    inputs[f"WebP RGBA {square[0]}x{square[1]}"] = encoded(black["RGBA"], "WEBP", lossless=True, method=0)
    return inputs


def peak_memory() -> dict[str, float]:
    print(f"\npeak RSS of prepare() in a fresh process, default limits (goal <= {PEAK_RSS_GOAL_MB} MB each)")
    peaks = {}
    for name, data in worst_inputs().items():
        peak, outcome = prepare_in_fresh_process(data)
        peaks[name] = peak / MB
        print(f"  {name:<76}{len(data) / 1e6:>6.2f} MB in  peak {peaks[name]:>5.0f} MB  {outcome}")
    worst = max(peaks, key=peaks.get)
    print(f"  worst: {worst}, {peaks[worst]:.0f} MB")
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (bench/run_all.py)")
    args = parser.parse_args()
    repeats = args.repeats
    photos = {name: camera_photo(size) for name, size in SIZES.items()}
    inputs = {
        "2mp_jpeg": camera_file(photos["2mp"], "JPEG"),
        "12mp_jpeg": camera_file(photos["12mp"], "JPEG"),
        "12mp_jpeg_rotated": camera_file(photos["12mp"], "JPEG", orientation=6),
        "24mp_jpeg": camera_file(photos["24mp"], "JPEG"),
        "2mp_png": camera_file(photos["2mp"], "PNG"),
        "12mp_png": camera_file(photos["12mp"], "PNG"),
    }
    print(f"normalize image path, medians of {repeats} runs, max_output_side={SETTINGS.max_output_side}\n")
    timings = compare(inputs, repeats)
    draft_scales(inputs["12mp_jpeg"], repeats)
    resize_filters(inputs["24mp_jpeg"], repeats)
    prepared_formats(photos["12mp"], repeats)
    pass_through_validation(inputs["12mp_jpeg"], repeats)
    peaks = peak_memory()
    if args.json:
        args.json.write_text(json.dumps({**timings, "peak_rss_mb": peaks}, indent=2))
    speedups = " ".join(f"speedup_{name}={row['speedup']:.2f}" for name, row in timings.items())
    print(f"\n{speedups} peak_rss_worst_mb={max(peaks.values()):.0f}")


if __name__ == "__main__":
    main()
