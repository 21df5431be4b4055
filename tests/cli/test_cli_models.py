"""`cutout models`, `cutout remove --model` and the model in `cutout status`, against the fake API
(tests/support/fake_cutout_api.py), which serves the domain's model catalogue and checks the model
a job names as the API does."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutout.errors import ErrorCode, JobRejected
from cutout.models import chosen_model
from cutout.settings import Settings
from cutout_cli.main import main
from tests.support import fake_cutout_api as fake

PHOTO = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"
CUTOUT = Path(sys.executable).with_name("cutout")


def test_models_lists_each_name_the_default_marked_and_its_description(fake_api, capsys):
    # Not the first model listed, so the marker must come from `default`.
    fake_api.serve_models(Settings(default_model=fake_api.models["models"][-1]["name"]))
    models = fake_api.models["models"]
    assert main(["models", "--api", fake_api.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line, model in zip(lines, models, strict=True):
        name, *rest = line.split()
        assert name == model["name"]
        assert (rest[0] == "default") == model["default"]
        assert line.endswith(f"  {model['description']}")
    # The descriptions start in one column.
    assert len({line.index(model["description"]) for line, model in zip(lines, models, strict=True)}) == 1


def test_models_json_is_the_apis_list(fake_api, capsys):
    assert main(["models", "--json", "--api", fake_api.url]) == 0
    assert json.loads(capsys.readouterr().out) == fake_api.models["models"]


def test_an_api_without_models_says_so_and_exits_1(fake_api, capsys):
    fake_api.plan(fake.MODELS, [fake.api_error(404, ErrorCode.NOT_FOUND, "no such route")])
    assert main(["models", "--api", fake_api.url]) == 1
    assert "cutout: not_found: no such route" in capsys.readouterr().err


def test_the_model_named_reaches_the_api_and_status_shows_it(fake_api, tmp_path, capsys):
    (not_default, *_) = [model["name"] for model in fake_api.models["models"] if not model["default"]]
    assert main(["remove", str(PHOTO), "--model", not_default, "--api", fake_api.url, "-o", str(tmp_path)]) == 0
    ((job_id, job),) = fake_api.jobs.items()
    assert job.body["model"] == not_default
    capsys.readouterr()
    assert main(["status", job_id, "--api", fake_api.url]) == 0
    assert f"model   {not_default}" in capsys.readouterr().out.splitlines()


def test_without_model_none_is_sent_and_status_shows_the_default(fake_api, tmp_path, capsys):
    assert main(["remove", str(PHOTO), "--api", fake_api.url, "-o", str(tmp_path)]) == 0
    ((job_id, job),) = fake_api.jobs.items()
    assert "model" not in job.body
    capsys.readouterr()
    assert main(["status", job_id, "--api", fake_api.url]) == 0
    assert f"model   {fake_api.default_model}" in capsys.readouterr().out.splitlines()


def test_an_unknown_model_fails_each_image_with_the_apis_message_and_no_traceback(fake_api, tmp_path):
    # A subprocess, so that what a person sees on stderr is all checked, a traceback included.
    run = subprocess.run(
        [CUTOUT, "remove", str(PHOTO), "--model", "no-such-model", "--api", fake_api.url, "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    with pytest.raises(JobRejected) as refused:
        chosen_model("no-such-model", fake_api.default_model)
    (problem,) = refused.value.details["problems"]
    assert f"cutout: {PHOTO}: bad_request: {refused.value.message}: model {problem['problem']}" in run.stderr
    assert "Traceback" not in run.stderr
    assert fake_api.jobs == {}
    assert list(tmp_path.iterdir()) == []
