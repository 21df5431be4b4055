"""The `cutout` command without a stack: usage, where the API URL comes from, what a file is, where output goes."""

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cutout.limits import service_limits
from cutout.settings import Settings
from cutout_cli.config import API_URL_VARIABLE, NoApiUrl, resolve_api_url
from cutout_cli.images import cutout_path, sniff_content_type, sniff_file
from cutout_cli.main import describe_job, main
from cutout_cli.progress import ProgressBoard
from tests.support.fake_cutout_api import CREATE, LIMITS

DATA = Path(__file__).resolve().parents[1] / "data"
# What GET /v1/limits lists, as the service builds it.
UPLOAD_TYPES = service_limits(Settings())["upload_types"]


def encoded(image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, image_format)
    return buffer.getvalue()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def outside_any_stack(tmp_path, monkeypatch) -> Path:
    """A working folder with no .local/stack.json above it and no API URL in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(API_URL_VARIABLE, raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["remove"],
        ["remove", "a.png", "--format", "gif"],
        ["remove", "a.png", "--concurrency", "0"],
        ["remove", "a.png", "--timeout", "0"],
        ["remove", "a.png", "--max-side", "large"],
        ["status"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv, outside_any_stack, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--api", "http://127.0.0.1:1"] if argv[:1] == ["remove"] else argv)
    assert exit_info.value.code == 2
    assert "usage: cutout" in capsys.readouterr().err


def test_output_dir_that_is_a_file_is_a_usage_error(outside_any_stack, capsys):
    (outside_any_stack / "taken").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["remove", "a.png", "-o", "taken", "--api", "http://127.0.0.1:1"])
    assert exit_info.value.code == 2
    assert "taken exists and is not a folder" in capsys.readouterr().err


def test_no_api_url_anywhere_is_a_usage_error_that_says_where_to_set_one(outside_any_stack, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "0b5a9b5e-0000-4000-8000-000000000000"])
    assert exit_info.value.code == 2
    assert "--api URL" in capsys.readouterr().err


def test_installed_console_script_reports_usage_errors_with_exit_2(outside_any_stack):
    script = Path(sys.executable).with_name("cutout")
    environ = {key: value for key, value in os.environ.items() if key != API_URL_VARIABLE}
    finished = subprocess.run([script, "remove"], capture_output=True, text=True, env=environ, timeout=60)
    assert finished.returncode == 2
    assert "usage: cutout remove" in finished.stderr


def write_stack(folder: Path, api_url: str) -> None:
    (folder / ".local").mkdir(parents=True)
    (folder / ".local" / "stack.json").write_text(json.dumps({"api_url": api_url, "web_url": "http://127.0.0.1:8765/"}))


def test_api_url_flag_wins_over_environment_and_stack_file(tmp_path):
    write_stack(tmp_path, "http://from-stack")
    environ = {API_URL_VARIABLE: "http://from-env"}
    assert resolve_api_url("http://from-flag/", environ, tmp_path) == "http://from-flag"


def test_api_url_environment_wins_over_stack_file(tmp_path):
    write_stack(tmp_path, "http://from-stack")
    assert resolve_api_url(None, {API_URL_VARIABLE: "http://from-env"}, tmp_path) == "http://from-env"


def test_api_url_from_the_nearest_stack_file_above_the_working_folder(tmp_path):
    write_stack(tmp_path, "http://outer")
    write_stack(tmp_path / "project", "http://127.0.0.1:4566/restapis/abc/local/_user_request_/")
    nested = tmp_path / "project" / "photos" / "2026"
    nested.mkdir(parents=True)
    assert resolve_api_url(None, {}, nested) == "http://127.0.0.1:4566/restapis/abc/local/_user_request_"


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"web_url": "http://127.0.0.1:8765/"})])
def test_a_stack_file_without_an_api_url_is_refused_with_its_path(tmp_path, content):
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "stack.json").write_text(content)
    with pytest.raises(NoApiUrl, match="stack.json"):
        resolve_api_url(None, {}, tmp_path)


@pytest.mark.parametrize(
    ("image_format", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_content_type_comes_from_the_bytes(image_format, content_type):
    assert sniff_content_type(encoded(image_format), UPLOAD_TYPES) == content_type


@pytest.mark.parametrize("image_format", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_not_accepted(image_format):
    assert sniff_content_type(encoded(image_format), UPLOAD_TYPES) is None


def test_a_file_name_does_not_decide_its_type(tmp_path):
    disguised = tmp_path / "photo.jpg"
    disguised.write_bytes((DATA / "chelsea.png").read_bytes())
    text = tmp_path / "notes.png"
    text.write_text("RIFF is not enough on its own")
    assert sniff_file(disguised, UPLOAD_TYPES) == "image/png"
    assert sniff_file(text, UPLOAD_TYPES) is None
    assert sniff_content_type(b"", UPLOAD_TYPES) is None


def test_the_first_upload_type_whose_every_signature_matches_is_the_type():
    upload_types = [
        {"content_type": "image/a", "signatures": [{"offset": 0, "hex": "0102"}, {"offset": 4, "hex": "ff"}]},
        {"content_type": "image/b", "signatures": [{"offset": 1, "hex": "02"}]},
        {"content_type": "image/c", "signatures": [{"offset": 0, "hex": "01"}]},
    ]
    assert sniff_content_type(b"\x01\x02\x00\x00\xff", upload_types) == "image/a"
    assert sniff_content_type(b"\x01\x02\x00\x00\xfe", upload_types) == "image/b"
    assert sniff_content_type(b"\x01\x03", upload_types) == "image/c"
    assert sniff_content_type(b"\x01", upload_types[:2]) is None


@pytest.mark.parametrize(
    ("output_format", "name"),
    [("png", "cat-cutout.png"), ("webp", "cat-cutout.webp"), ("mask", "cat-cutout.png"), ("jpeg", "cat-cutout.jpg")],
)
def test_output_is_named_after_the_input_and_written_next_to_it(output_format, name):
    assert cutout_path(Path("photos/cat.jpeg"), output_format) == Path("photos") / name


def test_output_goes_to_the_output_folder_when_given():
    assert cutout_path(Path("photos/holiday.2026.webp"), "webp", Path("out")) == Path("out/holiday.2026-cutout.webp")


def test_images_that_fail_before_reaching_the_api_exit_1_with_their_reasons(fake_api, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("just text")
    missing = tmp_path / "missing.jpg"
    exit_code = main(["remove", str(text), str(missing), "--api", fake_api.url])
    err = capsys.readouterr().err
    assert exit_code == 1
    assert f"{text}: unsupported_media_type: not a JPEG, PNG or WebP image" in err
    assert f"{missing}: cannot read the file" in err
    assert len(fake_api.times(LIMITS)) == 1
    assert fake_api.times(CREATE) == []


def test_an_unreachable_api_fails_the_run_with_exit_1_and_names_the_url(tmp_path, capsys):
    api_url = closed_port_url()
    exit_code = main(["remove", str(DATA / "chelsea.png"), "--api", api_url, "-o", str(tmp_path / "out")])
    assert exit_code == 1
    assert f"cannot reach the API at {api_url}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_status_of_an_unreachable_api_exits_1_and_names_the_url(capsys):
    api_url = closed_port_url()
    assert main(["status", "0b5a9b5e-0000-4000-8000-000000000000", "--api", api_url]) == 1
    assert f"cannot reach the API at {api_url}" in capsys.readouterr().err


def test_progress_off_a_terminal_is_one_plain_line_per_stage():
    stream = io.StringIO()
    board = ProgressBoard(["a.jpg", "b.png"], stream)
    for fraction in (0.0, 0.5, 1.0):
        board.show(0, "uploading", fraction)
    board.show(1, "queued")
    board.show(0, "done", detail="a-cutout.png")
    assert stream.getvalue().splitlines() == ["a.jpg: uploading", "b.png: queued", "a.jpg: done a-cutout.png"]


def test_status_says_when_no_subject_was_found_and_leaves_unset_options_out():
    job = {
        "job_id": "0b5a9b5e-0000-4000-8000-000000000000",
        "status": "succeeded",
        "stages": {"succeeded": "2026-01-01T00:00:01Z"},
        "error": None,
        "result": {
            "url": "https://bucket/result",
            "expires_at": "2026-01-01T00:05:00Z",
            "format": "png",
            "width": 8,
            "height": 8,
            "bytes": 100,
            "subject": None,
            "output": {"format": "png", "bg_color": None, "crop": True, "crop_margin": None, "max_side": None},
        },
    }
    lines = describe_job(job).splitlines()
    assert "subject none found" in lines
    assert "output  format png, crop" in lines
