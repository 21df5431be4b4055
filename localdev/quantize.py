"""Static int8 quantization of a network, from activation ranges calibrated on the test photos.

QDQ format, per-channel int8 weights, uint8 activations, MinMax ranges: for u2net ~3x faster than
fp32 and closest to it (DESIGN.md section 8; dynamic quantization was slower). Signed int8
activations are slower than fp32 on x86, where ONNX Runtime's fast kernels are u8s8 and fewer
convolutions fuse (measured on a busy 2-vCPU host: 1.4x fp32's time; uint8 0.38x).

The build reads the ranges from ``calibration/<network>.json`` beside this file rather than
calibrating afresh: calibration runs the fp32 network, whose float results differ in the last bits
with the thread count (measured: 1 vs 2 threads) and the CPU's kernels, and any such difference
changes the file. From recorded ranges the build is exact arithmetic, so its md5 holds on any
host with the pinned onnx and onnxruntime. Recording them again (after changing the photos, the
views or the settings) is ``python -m localdev.quantize NETWORK``; it prints the md5 to record
in ``cutout.models``.
"""

import argparse
import json
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from PIL import Image, ImageOps

from cutout.models import NETWORKS, NetworkSpec, QuantizedFrom
from localdev import REPO, fetch_model

CALIBRATION_PHOTOS = REPO / "tests" / "data"
RECORDED_RANGES = Path(__file__).resolve().parent / "calibration"
SETTINGS = {
    "quant_format": QuantFormat.QDQ,
    "per_channel": True,
    "activation_type": QuantType.QUInt8,
    "weight_type": QuantType.QInt8,
    "calibrate_method": CalibrationMethod.MinMax,
}
# Per-channel QDQ needs DequantizeLinear's axis (opset 13); rembg's U²-Net files are opset 11.
OPSET = 13


def views(photo: Image.Image) -> list[Image.Image]:
    """Four inputs from one photo: whole, mirrored, its centre (0.7 of each side), and at half size."""
    width, height = photo.size
    margin_x, margin_y = round(width * 0.15), round(height * 0.15)
    centre = photo.crop((margin_x, margin_y, width - margin_x, height - margin_y))
    half = photo.resize((width // 2, height // 2), Image.Resampling.LANCZOS)
    return [photo, ImageOps.mirror(photo), centre, half]


class CalibrationInputs(CalibrationDataReader):
    def __init__(self, feeds: list[dict]):
        self.feeds = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def calibration_inputs(original: Path, spec: NetworkSpec) -> CalibrationInputs:
    """Every view of every test photo, fed as the engine feeds the network."""
    # The engine (and its session) only where ranges are recorded, not in the image build.
    from cutout_inference.engine import Network

    network = Network(original, spec, threads=1)
    photos = [Image.open(path).convert("RGB") for path in sorted(CALIBRATION_PHOTOS.glob("*.png"))]
    every_view = [view for photo in photos for view in views(photo)]
    return CalibrationInputs([{network.input_name: network.model_input(view)} for view in every_view])


def ranges_of(spec: NetworkSpec) -> Path:
    return RECORDED_RANGES / f"{spec.name}.json"


def at_opset(original: Path) -> onnx.ModelProto:
    return onnx.version_converter.convert_version(onnx.load(original), OPSET)


def quantize(original: Path, spec: NetworkSpec, output: Path) -> Path:
    """Build the quantized network spec names into output from the fp32 file at original, with the
    ranges recorded for it."""
    ranges = ranges_of(spec)
    if not ranges.is_file():
        raise FileNotFoundError(f"{ranges} is missing: record it with `python -m localdev.quantize {spec.name}`")
    quantize_static(at_opset(original), output, calibration_cache_path=ranges, **SETTINGS)
    return output


def record_ranges(original: Path, spec: NetworkSpec, ranges: Path) -> Path:
    """Calibrate the fp32 network at original, as spec quantizes it, on the test photos; write the
    ranges to the file ranges."""
    assert isinstance(spec.source, QuantizedFrom), spec.name
    inputs = calibration_inputs(original, NETWORKS[spec.source.network])
    with tempfile.TemporaryDirectory(prefix="cutout-calibration-") as tmp:
        calibrated, unused = Path(tmp) / ranges.name, Path(tmp) / spec.file_name
        quantize_static(at_opset(original), unused, inputs, calibration_cache_path=calibrated, **SETTINGS)
        # Sorted: the tensors come in a set's order, which changes from one run to the next.
        ranges.parent.mkdir(parents=True, exist_ok=True)
        ranges.write_text(json.dumps(json.loads(calibrated.read_text()), sort_keys=True, indent=1) + "\n")
    return ranges


def main(argv: list[str] | None = None) -> int:
    quantized = sorted(name for name, spec in NETWORKS.items() if isinstance(spec.source, QuantizedFrom))
    parser = argparse.ArgumentParser(description="Record a quantized network's calibration ranges and print its md5.")
    parser.add_argument("network", choices=quantized)
    args = parser.parse_args(argv)
    spec = NETWORKS[args.network]
    original = fetch_model.provision(NETWORKS[spec.source.network], fetch_model.default_dest(), "pypi")
    print(f"recorded {record_ranges(original, spec, ranges_of(spec))}")
    with tempfile.TemporaryDirectory(prefix="cutout-quantize-") as tmp:
        built = quantize(original, spec, Path(tmp) / spec.file_name)
        print(f"{spec.name}: md5 {fetch_model.md5_of(built)} (the registry says {spec.md5})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
