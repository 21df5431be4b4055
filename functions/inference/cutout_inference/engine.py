"""Background removal with the models of ``cutout.models`` on ONNX Runtime, without rembg.

For a saliency network the pre- and post-processing reproduce rembg 2.0.86 step for step
(``sessions/base.py`` normalize, ``sessions/u2netp.py`` predict, ``bg.py`` putalpha), so the
models that are one rembg network (u2netp, u2net) match ``rembg.remove(img,
session=new_session(name), putalpha=True)``; the others average networks' masks and stretch the
result (``BackgroundRemover.predict_alpha``). MODNet is fed as its authors' ONNX demo feeds it. What
differs from rembg is
everything around the model: no rembg import (0.9-1.4 s, and numba caches that fail on a
read-only filesystem), float32 arithmetic, and faster compositing and encoding. One deliberate
difference: where the model is nowhere confident of a subject, the mask is empty, where rembg
would stretch the faint prediction to full range.

The output options apply in the order ``cutout.output`` gives; each costs only when asked for,
except the subject box, which every result reports (one threshold and bounding box of the alpha).
"""

import ctypes
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import fpng
import numpy as np
import onnxruntime as ort
from PIL import Image, ImageChops, UnidentifiedImageError

from cutout.models import MODELS, NETWORKS, ModelSpec, NetworkKind, NetworkSpec
from cutout.output import SUBJECT_ALPHA_THRESHOLD, Color, CropMargin, OutputFormat, OutputOptions, SubjectBox

RESAMPLING = Image.Resampling.LANCZOS
# Lookup table: 255 wherever alpha is non-zero, 0 where the pixel is fully transparent.
OPAQUE_ANYWHERE = [0] + [255] * 255
# Lookup table: 255 where a pixel belongs to the subject (cutout.output's threshold), else 0.
SUBJECT_PIXELS = [0] * SUBJECT_ALPHA_THRESHOLD + [255] * (256 - SUBJECT_ALPHA_THRESHOLD)
# Below this raw model output everywhere, the model saw no subject. Measured on u2netp: the test
# photos (and a patch of wall behind the astronaut) peak at 0.9998 or more, a flat grey image at 0.002,
# a black one or a grey gradient at 0.06, a bare corner of the coffee photo's table top at 0.008.
# rembg stretches any such prediction to 0-255, making a flat grey image 180/255 opaque in places.
MIN_SUBJECT_CONFIDENCE = 0.5
# The coffee photo over white is 35 KB at q90, 51 KB at q95, 28 KB at q85: 90 is the common "no visible loss" setting.
JPEG_QUALITY = 90


class UnreadableImageError(ValueError):
    """The source bytes are not an image Pillow can decode; retrying cannot help."""


@dataclass(frozen=True)
class Cutout:
    format: OutputFormat
    body: bytes
    width: int
    height: int
    subject: SubjectBox | None

    @property
    def content_type(self) -> str:
        return self.format.content_type

    @property
    def size_bytes(self) -> int:
        return len(self.body)


def decode_image(data: bytes) -> tuple[Image.Image, Image.Image | None]:
    """The source as an RGB image and its own alpha (None when it has no transparency), fully
    decoded, or UnreadableImageError. Normalize prepares an opaque source as a JPEG: RGB as is."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise UnreadableImageError(f"cannot decode the source image: {error}") from error
    if not image.has_transparency_data:
        return (image if image.mode == "RGB" else image.convert("RGB")), None
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    return rgba.convert("RGB"), rgba.getchannel("A")


def within_source_alpha(alpha: Image.Image, source_alpha: Image.Image) -> Image.Image:
    """The model's alpha scaled by the source's own, rounded: what the upload hides stays
    hidden, and a pixel never comes out more opaque than it went in."""
    product = np.asarray(alpha, dtype=np.uint16) * np.asarray(source_alpha, dtype=np.uint16)
    # (product + 127) // 255 rounds product / 255 exactly: 255 is odd, so no quotient ends in .5.
    return Image.fromarray(((product + 127) // 255).astype(np.uint8))


def subject_box(alpha: Image.Image) -> SubjectBox | None:
    """The bounding box of the pixels at least SUBJECT_ALPHA_THRESHOLD opaque, or None."""
    box = alpha.point(SUBJECT_PIXELS).getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return SubjectBox(left, top, right - left, bottom - top)


def cropped(
    rgb: Image.Image, alpha: Image.Image, subject: SubjectBox, margin: CropMargin | None
) -> tuple[Image.Image, Image.Image, SubjectBox]:
    """The subject plus the margin on every side; Pillow fills what lies beyond the image with
    zeros, so a margin past its edge comes out transparent (and black beneath)."""
    pad = margin.pixels(subject.width, subject.height) if margin else 0
    area = (subject.x - pad, subject.y - pad, subject.x + subject.width + pad, subject.y + subject.height + pad)
    return rgb.crop(area), alpha.crop(area), replace(subject, x=pad, y=pad)


def scaled_to_fit(
    rgb: Image.Image, alpha: Image.Image, subject: SubjectBox | None, max_side: int
) -> tuple[Image.Image, Image.Image, SubjectBox | None]:
    """Scaled down so the longest side is max_side, the subject box with it (outward to whole pixels)."""
    width, height = rgb.size
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    rgb, alpha = rgb.resize(size, RESAMPLING), alpha.resize(size, RESAMPLING)
    if subject is None:
        return rgb, alpha, None
    scale_x, scale_y = size[0] / width, size[1] / height
    left, top = math.floor(subject.x * scale_x), math.floor(subject.y * scale_y)
    right = min(size[0], math.ceil((subject.x + subject.width) * scale_x))
    bottom = min(size[1], math.ceil((subject.y + subject.height) * scale_y))
    return rgb, alpha, SubjectBox(left, top, right - left, bottom - top)


def cut_out(rgb: Image.Image, alpha: Image.Image) -> Image.Image:
    """RGBA with the mask as alpha and black RGB under fully transparent pixels.

    Zeroed RGB compresses better and hides what was behind the subject. Multiplying each
    band by a 0/255 mask is exact and several times faster than a masked paste on RGBA.
    """
    keep = alpha.point(OPAQUE_ANYWHERE)
    bands = [ImageChops.multiply(band, keep) for band in rgb.split()]
    return Image.merge("RGBA", (*bands, alpha))


def over_background(rgb: Image.Image, alpha: Image.Image, color: Color) -> Image.Image:
    """The cutout composited (straight alpha) over the colour: RGB when it is opaque, else RGBA."""
    if color.opaque:
        # One blend with the alpha as mask: exact at alpha 0 (the colour) and 255 (the photo).
        return Image.composite(rgb, Image.new("RGB", rgb.size, color.rgba[:3]), alpha)
    return Image.alpha_composite(Image.new("RGBA", rgb.size, color.rgba), cut_out(rgb, alpha))


def encode_png(image: Image.Image) -> bytes:
    # fpng writes RGB and RGBA PNGs ~6x faster than Pillow at compress_level=1 for ~1% more bytes.
    size, channels = image.size, len(image.getbands())
    pixels = image.tobytes()
    # Handed a cutout no one else holds (encoded), the image goes before fpng's own buffers come.
    del image
    return fpng.from_bytes(pixels, *size, channels)


def encode_webp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # Lossless quality is encoder effort: 0 with method 0 is the fastest setting (~4x q80).
    image.save(buffer, "WEBP", lossless=True, quality=0, method=0)
    return buffer.getvalue()


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def encode_mask(alpha: Image.Image) -> bytes:
    buffer = io.BytesIO()
    alpha.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


ENCODERS: dict[OutputFormat, Callable[[Image.Image], bytes]] = {
    OutputFormat.PNG: encode_png,
    OutputFormat.WEBP: encode_webp,
    OutputFormat.JPEG: encode_jpeg,
}


def encoded(layers: list[Image.Image], options: OutputOptions) -> bytes:
    """The photo and its mask, taken out of `layers`, in the format the options ask for.

    Taken, so that nothing else holds them: each full-size image is freed once the next is made
    from it, the photo and mask once the cutout is composed, the cutout once its pixels are copied
    out for the encoder. At 12 MP that took a warm u2netp process's peak RSS from 647 to 510 MB
    while ONNX Runtime kept its own arena; with the heap kept for reuse (keep_heap_for_reuse), the
    encoder's two hand-overs still save 15 MB of its 412 (measured here).
    """
    rgb, alpha = layers
    layers.clear()
    if options.format is OutputFormat.MASK:
        return encode_mask(alpha)
    composed = [cut_out(rgb, alpha) if options.bg_color is None else over_background(rgb, alpha, options.bg_color)]
    del rgb, alpha
    return ENCODERS[options.format](composed.pop())


# Lambda gives a function one vCPU of time per 1,769 MB of memory, up to 6 at 10,240 MB (AWS's
# documentation), while showing it at least two cores.
LAMBDA_MB_PER_VCPU = 1769


def lambda_vcpus(memory_mb: int) -> float:
    """The vCPUs of time a Lambda function of this memory size gets."""
    return memory_mb / LAMBDA_MB_PER_VCPU


def threads_for(vcpus: float) -> int:
    """ONNX threads that make a run fastest on this many vCPUs of time: one per whole vCPU, and one
    more for a remainder of a quarter vCPU or more. Measured here under a CPU quota, as Lambda
    meters time (2 MP, u2netp): at 1.05 vCPUs one thread took 543 ms and two 579; at 1.3, 519 and
    468; at 1.7, 545 and 363."""
    return max(1, math.floor(vcpus + 0.75))


def available_cpus() -> int:
    """Cores this process may run on, and on Lambda no more than its memory size pays for: Lambda
    shows a function two cores at any size, and threads beyond its share of time only wait."""
    cpus = len(os.sched_getaffinity(0))
    memory_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if memory_mb:
        return min(cpus, threads_for(lambda_vcpus(int(memory_mb))))
    return cpus


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


@cache
def keep_heap_for_reuse() -> bool:
    """Tells glibc to keep every page the process frees, for its next allocations: to map nothing
    afresh and trim nothing. Whether it took; False where the C library is not glibc.

    ONNX Runtime's own arena keeps a network's activations (~270 MB for u2netp) to itself, so a
    12 MP photo's full-size images need as much again beside them. Without the arena, glibc would
    map each large tensor afresh and fault its pages in on every run (~35% slower); with the heap
    kept, a run's tensors and the photo's images reuse the same pages. Measured here (warm, one
    model per process, 12 MP): u2netp 622 → 502 ms and peak RSS 508 → 400 MB; u2net 1018 → 865 ms,
    911 → 718 MB; smaller photos as fast as before. A process serving every model over 60 mixed
    runs peaked at 857 MB instead of 1570, level after the first 20.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        return False
    # musl has a mallopt that only returns 0; glibc's returns 1 on success.
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1


class Network:
    """One ONNX Runtime session for one network file; a process creates each once (``network``)."""

    def __init__(self, model_path: Path, spec: NetworkSpec, threads: int | None = None):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The memory-pattern planner pre-reserves every activation at once. Beside ORT's arena
        # that was 545 MB peak RSS for u2netp against 351 MB without it (which cost ~4% more
        # CPU); with the heap kept for reuse, it is 66 MB more and no faster.
        options.enable_mem_pattern = False
        options.enable_cpu_mem_arena = not keep_heap_for_reuse()
        self.spec = spec
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.mean = np.array(spec.mean)
        self.std = np.array(spec.std)

    def input_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The size the image is fed at: the square side, or for matting MODNet's own rule
        (the short side at the reference side when the image is larger or smaller than it in
        every direction), each side then rounded down to a multiple of 32."""
        side = self.spec.input_size
        if self.spec.kind is NetworkKind.SALIENCY:
            return side, side
        width, height = image_size
        if max(width, height) < side or min(width, height) > side:
            if width >= height:
                width, height = round(width / height * side), side
            else:
                width, height = side, round(height / width * side)
        return max(32, width - width % 32), max(32, height - height % 32)

    def input_key(self, image_size: tuple[int, int]) -> tuple:
        """What model_input depends on: networks with the same key take the same array."""
        return self.spec.kind, self.input_size(image_size), self.spec.mean, self.spec.std

    def model_input(self, rgb: Image.Image) -> np.ndarray:
        pixels = np.asarray(rgb.resize(self.input_size(rgb.size), RESAMPLING))
        if self.spec.kind is NetworkKind.SALIENCY:
            # float64 as in rembg: at the model's input size it costs ~2 ms and makes the
            # mask bit-identical to rembg's instead of off by one level on a few pixels.
            scaled = pixels / max(int(pixels.max()), 1e-6)
        else:
            scaled = pixels / 255
        normalized = (scaled - self.mean) / self.std
        return np.ascontiguousarray(normalized.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)

    def predict(self, model_input: np.ndarray) -> tuple[np.ndarray, float]:
        """The subject mask at the network's output size, in 0..1, and the network's peak
        confidence (its highest raw output) that there is a subject at all."""
        raw = self.session.run(None, {self.input_name: model_input})[0][0, 0]
        low, high = raw.min(), raw.max()
        if self.spec.kind is NetworkKind.MATTING:
            return np.clip(raw, 0, 1), float(high)
        # rembg stretches the saliency map to 0..1; a constant one (no subject told apart) stays 0, not NaN.
        spread = (high - low) or np.float32(1)
        return (raw - low) / spread, float(high)


@cache
def network(name: str, model_dir: str) -> Network:
    """The process's session of a network, created on first use and shared by every model that runs it."""
    spec = NETWORKS[name]
    return Network(Path(model_dir) / spec.file_name, spec)


class BackgroundRemover:
    """A model (cutout.models): its networks' masks averaged into one alpha, upscaled to the
    photo, then stretched if the model says so."""

    def __init__(self, spec: ModelSpec, networks: list[Network]):
        self.spec = spec
        self.networks = networks
        self.stretch_table = spec.stretch.table() if spec.stretch else None

    @classmethod
    def for_model(cls, name: str, model_dir: str | Path) -> "BackgroundRemover":
        """The model's networks from the folder holding their files; each network's session is
        created on first use and kept, so a warm Lambda container reuses it."""
        spec = MODELS[name]
        return cls(spec, [network(network_name, str(model_dir)) for network_name in spec.networks])

    def predict_alpha(self, rgb: Image.Image) -> Image.Image:
        """The subject mask at the image's size, as an 8-bit L image."""
        # Networks fed alike share one input: the resize from a 12 MP photo alone is ~120 ms.
        inputs: dict[tuple, np.ndarray] = {}
        predictions = []
        for network in self.networks:
            key = network.input_key(rgb.size)
            if key not in inputs:
                inputs[key] = network.model_input(rgb)
            predictions.append(network.predict(inputs[key]))
        if max(confidence for _, confidence in predictions) < MIN_SUBJECT_CONFIDENCE:
            return Image.new("L", rgb.size, 0)
        first, *others = (mask for mask, _ in predictions)
        if others:
            rows, columns = first.shape
            bilinear = Image.Resampling.BILINEAR
            resized = [np.asarray(Image.fromarray(mask).resize((columns, rows), bilinear)) for mask in others]
            first = np.mean([first, *resized], axis=0)
        levels = (first * 255).astype(np.uint8)
        alpha = Image.fromarray(levels, mode="L").resize(rgb.size, RESAMPLING)
        return alpha.point(self.stretch_table) if self.stretch_table else alpha

    def remove_background(self, data: bytes, options: OutputOptions) -> Cutout:
        """Encoded image bytes in, the cutout as the options ask out."""
        rgb, source_alpha = decode_image(data)
        alpha = self.predict_alpha(rgb)
        if source_alpha is not None:
            alpha = within_source_alpha(alpha, source_alpha)
        subject = subject_box(alpha)
        if subject is None:
            # Nothing reaches the threshold: the faint rest of the alpha is haze, not a subject.
            alpha = Image.new("L", alpha.size, 0)
        elif options.crop:
            rgb, alpha, subject = cropped(rgb, alpha, subject, options.crop_margin)
        if options.max_side is not None and max(rgb.size) > options.max_side:
            rgb, alpha, subject = scaled_to_fit(rgb, alpha, subject, options.max_side)
        width, height = rgb.size
        layers = [rgb, alpha]
        del rgb, alpha
        return Cutout(options.format, encoded(layers, options), width, height, subject)
