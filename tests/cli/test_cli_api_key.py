"""The API key the CLI sends: where it comes from (--api-key, $CUTOUT_API_KEY, the local stack's
api_key), that every API call carries it as x-api-key and no S3 call does, and what a refused key
tells a person; against the fake API with a key configured."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutout_cli.config import API_KEY_VARIABLE, API_URL_VARIABLE, resolve_api_key
from cutout_cli.main import main
from tests.support import fake_cutout_api as fake

PHOTO = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"
CUTOUT = Path(sys.executable).with_name("cutout")
KEY = "local-test-key-0123456789abcdef"
JOB_ID = "0b5a9b5e-1111-4222-8333-444455556666"


@pytest.fixture
def keyed_api():
    with fake.serving(fake.FakeCutoutApi(api_key=KEY)) as api:
        yield api


@pytest.fixture
def no_configuration(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(API_URL_VARIABLE, raising=False)
    monkeypatch.delenv(API_KEY_VARIABLE, raising=False)
    return tmp_path


def write_stack(folder: Path, api_url: str, api_key: str | None) -> None:
    (folder / ".local").mkdir(parents=True, exist_ok=True)
    stack = {"api_url": api_url, "web_url": "http://127.0.0.1:8765/"} | ({"api_key": api_key} if api_key else {})
    (folder / ".local" / "stack.json").write_text(json.dumps(stack))


def test_api_key_flag_wins_over_environment_and_stack_file(tmp_path):
    write_stack(tmp_path, "http://stack", "from-stack")
    assert resolve_api_key("from-flag", {API_KEY_VARIABLE: "from-env"}, tmp_path, "http://stack") == "from-flag"
    assert resolve_api_key(None, {API_KEY_VARIABLE: "from-env"}, tmp_path, "http://stack") == "from-env"
    assert resolve_api_key(None, {}, tmp_path, "http://stack/") == "from-stack"


def test_the_stack_files_key_goes_only_to_that_stack(tmp_path):
    write_stack(tmp_path, "http://stack", "from-stack")
    assert resolve_api_key(None, {}, tmp_path, "https://another.example/prod") is None


def test_no_key_anywhere_is_none(tmp_path):
    assert resolve_api_key(None, {}, tmp_path, "http://stack") is None
    write_stack(tmp_path, "http://stack", None)
    assert resolve_api_key(None, {}, tmp_path, "http://stack") is None


def test_every_api_call_sends_the_key_and_no_storage_call_does(keyed_api, no_configuration, capsys):
    argv = ["remove", str(PHOTO), "--api", keyed_api.url, "--api-key", KEY, "-o", str(no_configuration)]
    assert main(argv) == 0, capsys.readouterr().err
    for route in (fake.LIMITS, fake.CREATE, fake.POLL):
        assert set(keyed_api.headers(route, "X-API-Key")) == {KEY}
    # S3's presigned URLs sign what they take; the key is not theirs to see.
    for route in (fake.UPLOAD, fake.RESULT):
        assert keyed_api.headers(route, "x-api-key") == [None]


def test_the_key_comes_from_the_environment(keyed_api, no_configuration, monkeypatch, capsys):
    monkeypatch.setenv(API_KEY_VARIABLE, KEY)
    assert main(["models", "--api", keyed_api.url]) == 0
    assert keyed_api.headers(fake.MODELS, "x-api-key") == [KEY]


def test_the_key_comes_from_the_local_stack_with_its_url(keyed_api, no_configuration, capsys):
    write_stack(no_configuration, keyed_api.url, KEY)
    nested = no_configuration / "photos"
    nested.mkdir()
    assert subprocess.run([CUTOUT, "models"], cwd=nested, capture_output=True, timeout=60).returncode == 0
    assert keyed_api.headers(fake.MODELS, "x-api-key") == [KEY]


@pytest.mark.parametrize("key", [None, "not-the-key"])
def test_a_refused_key_says_how_to_send_one_and_exits_1(keyed_api, no_configuration, key):
    argv = [CUTOUT, "status", JOB_ID, "--api", keyed_api.url] + (["--api-key", key] if key else [])
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"cutout: forbidden: Forbidden (the API needs a valid API key: pass --api-key KEY or set {API_KEY_VARIABLE};"
        " `cutout keys create --plan NAME` makes one)"
    ]
    # Refused before anything is asked: no batch lookup after the job's 403.
    assert len(keyed_api.times(fake.POLL)) == 1 and keyed_api.times(fake.BATCH_POLL) == []


def test_remove_with_a_refused_key_fails_before_any_job(keyed_api, no_configuration, capsys):
    assert main(["remove", str(PHOTO), str(PHOTO), "--api", keyed_api.url]) == 1
    assert "forbidden: Forbidden (the API needs a valid API key" in capsys.readouterr().err
    assert keyed_api.jobs == {} and keyed_api.times(fake.BATCH) == []
