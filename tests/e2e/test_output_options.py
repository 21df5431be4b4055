"""Output options end to end: each one asked for over HTTP, applied by the deployed pipeline, and
checked in the downloaded pixels; bad values refused by the API before any job exists."""

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "data"


def jpeg_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


CHELSEA = jpeg_of(Image.open(DATA / "chelsea.png"))
FLAT_GREY = jpeg_of(Image.new("RGB", (320, 240), (128, 128, 128)))
CASES = {
    "jpeg-on-white": (CHELSEA, {"format": "jpeg"}),
    "png-on-translucent-green": (CHELSEA, {"format": "png", "bg_color": "#00FF0080"}),
    "cropped-with-margin": (CHELSEA, {"format": "png", "crop": True, "crop_margin": "10px"}),
    "capped-side": (CHELSEA, {"format": "webp", "max_side": 128}),
    "no-subject": (FLAT_GREY, {"format": "png", "crop": True}),
}


@pytest.fixture(scope="module")
def finished(stack) -> dict[str, tuple[dict, Image.Image, dict]]:
    """Every case submitted at once and waited for: (the job, the downloaded result, its options)."""

    def run(case: str):
        image, output = CASES[case]
        job = stack.submit(image, "image/jpeg", output=output)
        done = stack.wait(job["job_id"])
        assert done["status"] == "succeeded", done
        download = requests.get(done["result"]["url"], timeout=30)
        assert download.status_code == 200
        assert download.headers["Content-Type"] == done["result"]["content_type"]
        return case, (done, Image.open(io.BytesIO(download.content)), output)

    with ThreadPoolExecutor(len(CASES)) as pool:
        return dict(pool.map(run, CASES))


def test_jpeg_is_the_cutout_over_white_with_no_alpha(finished, stack):
    done, result, _ = finished["jpeg-on-white"]
    assert result.format == "JPEG" and result.mode == "RGB"
    assert done["result"]["content_type"] == "image/jpeg"
    assert done["result"]["output"] == {
        "format": "jpeg",
        "bg_color": "#FFFFFF",
        "crop": False,
        "crop_margin": None,
        "max_side": None,
    }
    assert all(channel >= 245 for channel in result.getpixel((2, 2))), "the background corner is white"
    stack.assert_keys_settle(done["job_id"], {f"results/{done['job_id']}.jpg"})


def test_a_translucent_colour_fills_the_background_and_keeps_the_result_rgba(finished):
    done, result, _ = finished["png-on-translucent-green"]
    assert result.mode == "RGBA"
    assert result.getpixel((2, 2)) == (0, 255, 0, 128)
    assert done["result"]["output"]["bg_color"] == "#00FF0080"


def test_a_crop_is_the_subject_box_with_its_margin(finished):
    done, result, _ = finished["cropped-with-margin"]
    original = Image.open(DATA / "chelsea.png")
    subject = done["result"]["subject"]
    assert (result.width, result.height) == (done["result"]["width"], done["result"]["height"])
    assert (subject["x"], subject["y"]) == (10, 10)
    assert (subject["width"] + 20, subject["height"] + 20) == result.size
    assert subject["width"] <= original.width and subject["height"] <= original.height
    assert result.getpixel((0, 0))[3] == 0, "the margin is transparent"


def test_max_side_caps_the_longest_side_and_keeps_the_shape(finished):
    done, result, _ = finished["capped-side"]
    original = Image.open(DATA / "chelsea.png")
    assert max(result.size) == 128
    assert abs(result.width / result.height - original.width / original.height) < 0.02
    assert done["result"]["output"]["max_side"] == 128


def test_with_no_subject_the_job_succeeds_uncropped_and_fully_transparent(finished):
    done, result, _ = finished["no-subject"]
    assert done["result"]["subject"] is None
    assert result.size == (320, 240)
    assert result.getchannel("A").getextrema() == (0, 0)


@pytest.mark.parametrize(
    "output, field",
    [
        ({"format": "gif"}, "output.format"),
        ({"bg_color": "red"}, "output.bg_color"),
        ({"format": "jpeg", "bg_color": "#00000080"}, "output.bg_color"),
        ({"format": "mask", "bg_color": "#FFFFFF"}, "output.bg_color"),
        ({"crop_margin": "10px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "501px"}, "output.crop_margin"),
        ({"crop": True, "crop_margin": "51%"}, "output.crop_margin"),
        ({"crop": "yes"}, "output.crop"),
        ({"max_side": 15}, "output.max_side"),
        ({"max_side": "128"}, "output.max_side"),
        ({"shadow": True}, "output.shadow"),
    ],
)
def test_a_bad_option_is_a_400_naming_the_field(stack, output, field):
    response = requests.post(
        f"{stack.api_url}/v1/jobs",
        json={"content_type": "image/jpeg", "content_length": 1000, "output": output},
        headers=stack.headers,
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert field in [problem["field"] for problem in error["details"]["problems"]], error
