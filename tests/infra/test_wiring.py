"""The wiring description agrees with the code it describes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from cutout.models import MODELS, networks_of
from cutout_api import handler as api_handler
from infra import PYTHON_VERSION, REPO_ROOT
from infra.bundling import LocalBundling
from infra.settings import StackSettings
from infra.stack import CutoutStack
from infra.wiring import API, FUNCTIONS, INFERENCE, SHARED_LAYER_FOLDER
from localdev.fetch_model import md5_of
from tests.support.stack_synthesis import app_for

OPENAPI_DOCUMENT = ("GET", "/v1/openapi.json")  # served, but kept out of the schema it serves


def handler_schema():
    """The handler's routes, as its document lists them with API keys (the public ones say so)."""
    return api_handler.app.get_openapi_schema(
        title="Cutout API",
        version="1.0.0",
        security_schemes={api_handler.API_KEY_SCHEME: APIKey(name="x-api-key", in_=APIKeyIn.header)},
    )


def test_api_routes_are_exactly_the_handlers_routes():
    schema = handler_schema()
    handled = {(method.upper(), path) for path, item in schema.paths.items() for method, op in item if op is not None}
    assert handled | {OPENAPI_DOCUMENT} == {(route.method, route.path) for route in API.trigger.routes}


def test_the_costly_routes_are_exactly_those_that_create_a_job():
    """A route that starts work (answers 201) gets the lower throttle; reads do not."""
    schema = handler_schema()
    creating = {
        (method.upper(), path)
        for path, item in schema.paths.items()
        for method, operation in item
        if operation is not None and 201 in operation.responses
    }
    assert creating
    assert {(route.method, route.path) for route in API.trigger.routes if route.costly} == creating


def test_the_public_routes_are_exactly_those_the_handler_documents_without_credentials():
    """API Gateway lets a public route through without a key; the document says it needs none."""
    schema = handler_schema()
    keyless = {
        (method.upper(), path)
        for path, item in schema.paths.items()
        for method, operation in item
        if operation is not None and operation.security == api_handler.NO_CREDENTIALS
    }
    assert keyless == {(route.method, route.path) for route in API.trigger.routes if route.public}


IMPORT_HANDLER = """
import importlib, json, sys
module_name, function_name, task_root = sys.argv[1:4]
module = importlib.import_module(module_name)
print(json.dumps({"file": module.__file__, "callable": callable(getattr(module, function_name, None))}))
"""


@pytest.fixture(scope="module")
def shipped_layer(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layer")
    LocalBundling(REPO_ROOT / SHARED_LAYER_FOLDER / "python", prefix="python").try_bundle(str(out), None)
    return out / "python"


@pytest.mark.parametrize("wiring", FUNCTIONS, ids=lambda wiring: wiring.name)
def test_each_handler_is_a_function_lambda_can_import_from_what_is_shipped(wiring, shipped_layer, tmp_path):
    """The handler string, resolved as Lambda resolves it: in the bundled zip (the task root)
    first, then the layer's python/ folder; the venv only supplies the third-party packages."""
    task_root = tmp_path / "task"
    LocalBundling(REPO_ROOT / wiring.folder).try_bundle(str(task_root), None)
    module, _, function = wiring.handler.rpartition(".")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(task_root), str(shipped_layer)])}
    imported = subprocess.run(
        [sys.executable, "-c", IMPORT_HANDLER, module, function, str(task_root)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=task_root,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    found = json.loads(imported.stdout.splitlines()[-1])
    assert found["callable"], wiring.handler
    assert Path(found["file"]).is_relative_to(task_root), found["file"]


def test_the_zip_ships_every_network_where_the_engine_looks_for_it(tmp_path):
    """Bundled as the stack bundles it, with the zip's CUTOUT_MODEL_DIR, relative to the task root
    (Lambda's working directory), naming the folder the network files are in: one for each
    network any model runs."""
    task_root = tmp_path / "task"
    extra_files = {inside: REPO_ROOT / outside for inside, outside in INFERENCE.extra_files.items()}
    LocalBundling(REPO_ROOT / INFERENCE.folder, extra_files=extra_files).try_bundle(str(task_root), None)
    model_dir = task_root / INFERENCE.zip_environment["CUTOUT_MODEL_DIR"]
    expected = networks_of(list(MODELS))
    assert {path.name for path in model_dir.iterdir()} == {network.file_name for network in expected}
    for network in expected:
        assert md5_of(model_dir / network.file_name) == network.md5, network.name


def test_requirements_point_at_repository_files():
    for wiring in FUNCTIONS:
        if wiring.requirements:
            assert (REPO_ROOT / wiring.requirements).is_file(), wiring.requirements


def test_the_image_build_context_holds_everything_the_dockerfile_copies(tmp_path):
    """CDK stages the context with the Dockerfile's ignore file applied: the build must still find its files."""
    app = app_for(outdir=str(tmp_path / "cdk.out"))
    settings = StackSettings.from_context(app.node)
    CutoutStack(app, settings.stack_name, settings)
    assembly = app.synth()
    manifest = json.loads(Path(assembly.directory, f"{settings.stack_name}.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    context = Path(assembly.directory, image["source"]["directory"])
    assert image["source"]["dockerFile"] == INFERENCE.dockerfile
    # The image's base is the project's Python, as the zip functions' runtime is.
    assert image["source"]["dockerBuildArgs"] == {"PYTHON_VERSION": PYTHON_VERSION}
    assert "FROM public.ecr.aws/lambda/python:${PYTHON_VERSION}\n" in (REPO_ROOT / INFERENCE.dockerfile).read_text()
    assert (context / INFERENCE.dockerfile).is_file()
    dockerfile = (REPO_ROOT / INFERENCE.dockerfile).read_text().replace("\\\n", " ")
    copied = [
        source
        for line in dockerfile.splitlines()
        # COPY --from copies out of the build stage, not the context.
        if line.startswith("COPY ") and not line.startswith("COPY --from=")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]
    assert copied
    for source in copied:
        assert (context / source).exists(), source
    staged = {str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()}
    assert not any(part in path for path in staged for part in (".venv", "node_modules", "__pycache__", "tests/"))
