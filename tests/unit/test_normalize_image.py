"""The image logic of the normalize stage on the hostile corpus and on real photos, pixel by pixel."""

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from cutout.errors import ErrorCode, JobRejected
from cutout.settings import Settings
from cutout_normalize.image import PreparedImage, prepare
from tests.support.hostile_images import (
    CASES,
    CASES_BY_NAME,
    EXTREME_SHAPES,
    GPS_TEXT,
    MARKER_RED,
    STORED_FOR_ORIENTATION,
    Case,
    black_png,
    encoded,
    photo,
    png_bomb,
    prepare_in_fresh_process,
)

DEFAULTS = Settings()
# Normalize runs with 2048 MB on AWS; the goal leaves room for the handler and the runtime.
PEAK_RSS_GOAL_BYTES = 1024 * 1024 * 1024
# too_large is decided by the bounded read of the object, before any byte reaches prepare().
BYTE_CASES = [case for case in CASES if case.error is not ErrorCode.TOO_LARGE]


def prepared(case: Case, settings: Settings = DEFAULTS) -> PreparedImage:
    return prepare(case.body, case.content_length, settings)


def decoded(result: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.body))
    image.load()
    return image


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(first.convert("RGB"), second.convert("RGB"))).mean) / 3


@pytest.mark.parametrize("case", BYTE_CASES, ids=lambda case: case.name)
def test_each_case_is_prepared_or_refused_as_owed(case):
    if case.error:
        with pytest.raises(JobRejected) as refused:
            prepared(case)
        assert refused.value.code is case.error
        return
    result = prepared(case)
    image = decoded(result)
    assert (result.width, result.height, result.content_type) == case.prepared
    assert (*image.size, Image.MIME[image.format]) == case.prepared
    assert image.mode in (("RGBA",) if result.content_type == "image/png" else ("RGB", "L"))


@pytest.mark.parametrize("orientation", STORED_FOR_ORIENTATION)
@pytest.mark.parametrize("max_side", [DEFAULTS.max_output_side, 100], ids=["full-size", "draft-and-resize"])
def test_an_exif_rotated_photo_comes_out_upright(orientation, max_side):
    result = prepared(CASES_BY_NAME[f"exif-orientation-{orientation}"], Settings(max_output_side=max_side))
    image = decoded(result)

    assert image.width > image.height
    red, green, blue = image.getpixel((2, 2))
    assert red > 200 and green < 60 and blue < 60
    assert image.getpixel((image.width - 3, image.height - 3)) != pytest.approx(MARKER_RED, abs=60)
    assert not image.getexif()


def test_an_upright_jpeg_keeps_its_exact_pixels_and_loses_its_metadata():
    case = CASES_BY_NAME["jpeg-with-metadata"]

    result = prepared(case)

    assert not result.reencoded
    assert GPS_TEXT.encode() not in result.body
    image = decoded(result)
    assert not image.getexif() and "icc_profile" not in image.info and "xmp" not in image.info
    original = Image.open(io.BytesIO(case.body))
    assert ImageChops.difference(image, original.convert("RGB")).getbbox() is None


def test_a_polyglot_loses_what_follows_the_jpeg():
    case = CASES_BY_NAME["polyglot-jpeg-zip"]

    result = prepared(case)

    assert b"PK" not in result.body[-300:]
    assert result.body.endswith(b"\xff\xd9") and len(result.body) < len(case.body)


def test_a_progressive_jpeg_passes_through_intact():
    case = CASES_BY_NAME["progressive-jpeg"]

    image = decoded(prepared(case))

    assert ImageChops.difference(image, Image.open(io.BytesIO(case.body)).convert("RGB")).getbbox() is None


def test_cmyk_keeps_its_colours():
    assert mean_difference(decoded(prepared(CASES_BY_NAME["cmyk-jpeg"])), photo()) < 6


def test_sixteen_bit_samples_are_scaled_not_clipped():
    image = decoded(prepared(CASES_BY_NAME["png-16-bit-grey"])).convert("L")

    assert image.getpixel((2, 32)) < 10
    assert image.getpixel((253, 32)) > 245
    assert ImageStat.Stat(image).mean[0] == pytest.approx(127.5, abs=4)


def test_sixteen_bit_rgb_keeps_the_photo():
    assert mean_difference(decoded(prepared(CASES_BY_NAME["png-16-bit-rgb"])), photo()) < 2


def test_palette_transparency_survives():
    alpha = decoded(prepared(CASES_BY_NAME["palette-png-with-transparency"])).getchannel("A")

    assert alpha.crop((0, 0, 60, 80)).getextrema() == (0, 0)
    assert alpha.crop((60, 0, 120, 80)).getextrema() == (255, 255)


def test_the_photo_frame_of_an_mpo_is_kept():
    image = decoded(prepared(CASES_BY_NAME["mpo-photo-with-depth-frame"]))

    assert mean_difference(image, photo(size=(80, 60))) < mean_difference(image, photo("coffee", (80, 60)))


def test_a_downscaled_photo_keeps_its_content():
    case = CASES_BY_NAME["photo-png"]

    result = prepared(case, Settings(max_output_side=128))

    reference = photo("astronaut").resize((128, 128), Image.Resampling.LANCZOS)
    assert mean_difference(decoded(result), reference) < 5  # a shifted or mirrored result is > 20


def test_the_pixel_limit_is_inclusive():
    case = CASES_BY_NAME["photo-jpeg"]

    assert prepared(case, Settings(max_input_pixels=451 * 300)).width == 451
    with pytest.raises(JobRejected) as refused:
        prepared(case, Settings(max_input_pixels=451 * 300 - 1))
    assert refused.value.code is ErrorCode.TOO_MANY_PIXELS


def test_the_side_limit_is_inclusive():
    case = CASES_BY_NAME["photo-jpeg"]

    assert prepared(case, Settings(max_input_side=451)).width == 451
    with pytest.raises(JobRejected) as refused:
        prepared(case, Settings(max_input_side=450))
    assert refused.value.code is ErrorCode.TOO_MANY_PIXELS
    assert refused.value.details == {"max_side": 450}
    assert "450 pixels" in refused.value.message


@pytest.mark.parametrize(
    "body",
    [CASES_BY_NAME["png-1x50000000-sliver"].body, png_bomb(1, DEFAULTS.max_input_pixels)],
    ids=["complete", "header-only"],
)
def test_a_sliver_within_the_pixel_limit_is_refused_before_decoding(body):
    """The header-only file has no pixels to decode: the same answer for both shows the side was
    judged from the header, before a row was decoded."""
    with pytest.raises(JobRejected) as refused:
        prepare(body, len(body), DEFAULTS)

    assert refused.value.code is ErrorCode.TOO_MANY_PIXELS
    assert refused.value.details == {"max_side": DEFAULTS.max_input_side}


WEBP_AT_THE_PIXEL_LIMIT = "webp at the pixel limit"


def extreme_input(name: str) -> bytes:
    """Transparent, the costliest to decode and resize: a PNG of each extreme shape, and a WebP
    at the pixel limit (libwebp keeps two canvases of its own besides Pillow's pixels)."""
    if name == WEBP_AT_THE_PIXEL_LIMIT:
        return encoded(Image.new("RGBA", EXTREME_SHAPES["square at the pixel limit"]), "WEBP", lossless=True, method=0)
    return black_png(*EXTREME_SHAPES[name], "RGBA")


@pytest.mark.parametrize("name", [*EXTREME_SHAPES, WEBP_AT_THE_PIXEL_LIMIT], ids=lambda name: name.replace(" ", "-"))
def test_the_extreme_inputs_are_refused_or_prepared_within_a_gigabyte(name):
    peak, outcome = prepare_in_fresh_process(extreme_input(name))

    assert outcome == ErrorCode.TOO_MANY_PIXELS or outcome.endswith("image/png")
    assert peak < PEAK_RSS_GOAL_BYTES, f"{outcome}: peak RSS {peak / 2**20:.0f} MB"


ICC_CASES = [
    "png-with-large-icc-profile",
    "transparent-png-with-large-icc-profile",
    "transparent-webp-with-icc-profile",
]


@pytest.mark.parametrize("name", ICC_CASES)
def test_an_icc_profile_is_accepted_and_stripped(name):
    """Pillow refused a PNG's profile over 1 MB as corrupt, and a transparent image's profile
    went on into the prepared PNG."""
    image = decoded(prepared(CASES_BY_NAME[name]))

    assert "icc_profile" not in image.info
