"""What the container image promises, checked without Docker.

The handler runs in a fresh venv holding exactly functions/inference/requirements.txt plus
boto3 (which the Lambda base image provides), with the code laid out on PYTHONPATH as in the
image, HOME=/tmp as the Dockerfile sets it, and, in the second test, a filesystem that is
read-only except for a fresh /tmp, as on Lambda.

The driver runs in two phases. First, with nothing but the image's packages: it imports the
handler, checks that no module came from anywhere else, and cuts out a photo in every format.
Then, to reach S3 and DynamoDB, it appends the project venv (for moto) after everything
else and runs a real SQS batch through the handler.
"""

import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support.inference import provisioned_model

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "functions" / "inference" / "requirements.txt"
IMAGE_VENV = ROOT / ".venv-inference-image"
CODE_PATHS = [ROOT / "functions" / "inference", ROOT / "layers" / "shared" / "python"]

DRIVER = r"""
import json, os, site, sys, time, types

code_paths, photo, project_site = sys.argv[1:4]
report = {"writable": {}}
for place in (code_paths.split(os.pathsep)[0], sys.prefix, os.environ["CUTOUT_MODEL_DIR"], "/tmp"):
    try:
        with open(os.path.join(place, ".write-probe"), "w"):
            pass
        os.remove(os.path.join(place, ".write-probe"))
        report["writable"][place] = True
    except OSError:
        report["writable"][place] = False

# Phase 1: the image's packages alone.
from cutout_inference import handler as inference_handler
from cutout.output import OutputFormat, OutputOptions
from cutout.models import DEFAULT_MODEL
from cutout.settings import Settings
from cutout_inference.engine import BackgroundRemover

allowed = (sys.prefix, sys.base_prefix, *code_paths.split(os.pathsep))
report["foreign_modules"] = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith(allowed)
)
data = open(photo, "rb").read()
remover = BackgroundRemover.for_model(DEFAULT_MODEL, Settings.from_env().cutout_model_dir)
report["cutouts"] = {
    f.value: [c.width, c.height, c.size_bytes]
    for f in OutputFormat for c in [remover.remove_background(data, OutputOptions.from_request({"format": f}))]
}

# Phase 2: moto stands in for AWS; the project venv (with its editable installs, so the tests'
# support package) comes last so it cannot shadow the image's.
site.addsitedir(project_site)
import boto3
from moto import mock_aws
from tests.support.fake_aws import create_job_table
from tests.support.inference import job_message, queue_job, sqs_event
from cutout.aws import JobRepository, ObjectStore

with mock_aws():
    create_job_table(boto3.client("dynamodb"), os.environ["TABLE_NAME"])
    boto3.client("s3").create_bucket(Bucket=os.environ["BUCKET_NAME"])
    jobs, store = JobRepository(os.environ["TABLE_NAME"]), ObjectStore(os.environ["BUCKET_NAME"])
    good, corrupt = queue_job(jobs, store, data), queue_job(jobs, store, b"not an image")
    context = types.SimpleNamespace(
        function_name="inference", memory_limit_in_mb=3008, aws_request_id="request-1",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:inference",
    )
    report["batch"] = inference_handler.lambda_handler(
        sqs_event(job_message(good), ("{}", 1), job_message(corrupt)), context
    )
    report["statuses"] = [jobs.get(job_id, time.time()).status for job_id in (good, corrupt)]
print("REPORT " + json.dumps(report))
"""


def requirements_fingerprint() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes() + f"boto3=={version('boto3')}".encode()).hexdigest()


@pytest.fixture(scope="module")
def image_python() -> Path:
    """The fresh venv's interpreter, rebuilt only when the image's requirements change."""
    marker = IMAGE_VENV / "requirements.sha256"
    python = IMAGE_VENV / "bin" / "python"
    if not (marker.is_file() and marker.read_text() == requirements_fingerprint()):
        shutil.rmtree(IMAGE_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(IMAGE_VENV)], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS), f"boto3=={version('boto3')}"],
            check=True,
        )
        marker.write_text(requirements_fingerprint())
    return python


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return provisioned_model().parent


def lambda_like_environment(model_dir: Path) -> dict:
    """Only what the deployed function would have: no developer settings leak in."""
    keep = (
        "PATH",
        "LANG",
        "TABLE_NAME",
        "BUCKET_NAME",
        "QUEUE_URL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_TRACE_DISABLED",
    )
    return {
        **{name: os.environ[name] for name in keep if name in os.environ},
        "HOME": "/tmp",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": os.pathsep.join(map(str, CODE_PATHS)),
        "CUTOUT_MODEL_DIR": str(model_dir),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def run_driver(command_prefix: list[str], python: Path, model_dir: Path) -> dict:
    (project_site,) = site.getsitepackages()
    completed = subprocess.run(
        [
            *command_prefix,
            str(python),
            "-c",
            DRIVER,
            os.pathsep.join(map(str, CODE_PATHS)),
            str(ROOT / "tests" / "data" / "coffee.png"),
            project_site,
        ],
        env=lambda_like_environment(model_dir),
        capture_output=True,
        text=True,
        cwd="/",
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")]
    return json.loads(line.removeprefix("REPORT "))


def assert_handler_worked(report: dict) -> None:
    assert report["foreign_modules"] == []
    assert sorted(report["cutouts"]) == ["jpeg", "mask", "png", "webp"]
    for width, height, size_bytes in report["cutouts"].values():
        assert (width, height) == (600, 400) and size_bytes > 1000
    assert report["batch"] == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    assert report["statuses"] == ["succeeded", "failed"]


def test_handler_runs_with_exactly_the_image_requirements(image_python, model_dir):
    assert_handler_worked(run_driver([], image_python, model_dir))


# Remount / read-only in a private mount namespace (nothing changes outside it), then give the
# process a fresh tmpfs /tmp, as Lambda does: it may write there and nowhere else. A checkout
# that itself lives under /tmp (a CI clone may) is carried into the fresh /tmp, read-only, at
# the same path, since its venvs hold absolute paths.
READ_ONLY_ROOT = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-ec",
    'repo=$1; shift; keep=$(mktemp -d -p /dev/shm) && mount --bind "$repo" "$keep"'
    " && mount -o remount,ro,bind / && mount -t tmpfs -o size=512m tmpfs /tmp"
    ' && case "$repo" in /tmp/*) mkdir -p "$repo" && mount -n --move "$keep" "$repo"'
    ' && mount -n -o remount,ro,bind "$repo";; esac && exec "$@"',
    "sandbox",
    str(ROOT),
]


def test_handler_runs_on_a_read_only_filesystem_with_a_writable_tmp(image_python, model_dir):
    if findmnt_target(ROOT) != "/" or findmnt_target(image_python.resolve()) != "/":
        pytest.fail("the sandbox remounts / read-only; the repo and Python must live on /")
    report = run_driver(READ_ONLY_ROOT, image_python, model_dir)
    writable = report["writable"]
    assert writable.pop("/tmp") is True
    assert set(writable.values()) == {False}, writable
    assert_handler_worked(report)


def findmnt_target(path: Path) -> str:
    return subprocess.run(
        ["findmnt", "-no", "TARGET", "-T", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
