"""The wiring description agrees with the code it describes."""

import json
from pathlib import Path

import api_handler
from stack_synthesis import app_for

from infra import REPO_ROOT
from infra.settings import StackSettings
from infra.stack import CutoutStack
from infra.wiring import API, FUNCTIONS, INFERENCE, MODEL

OPENAPI_DOCUMENT = ("GET", "/v1/openapi.json")  # served, but kept out of the schema it serves


def test_api_routes_are_exactly_the_handlers_routes():
    schema = api_handler.app.get_openapi_schema(title="Cutout API", version="1.0.0")
    handled = {(method.upper(), path) for path, item in schema.paths.items() for method, op in item if op is not None}
    assert handled | {OPENAPI_DOCUMENT} == {(route.method, route.path) for route in API.trigger.routes}


def test_only_job_creation_is_costly():
    assert [(r.method, r.path) for r in API.trigger.routes if r.costly] == [("POST", "/v1/jobs")]


def test_every_handler_module_exists_in_its_folder():
    for wiring in FUNCTIONS:
        module, _, function = wiring.handler.rpartition(".")
        source = REPO_ROOT / wiring.folder / f"{module}.py"
        assert source.is_file(), source
        assert f"def {function}(" in source.read_text() or f"{function} =" in source.read_text(), wiring.handler


def test_requirements_and_extra_files_point_at_repository_paths():
    for wiring in FUNCTIONS:
        if wiring.requirements:
            assert (REPO_ROOT / wiring.requirements).is_file(), wiring.requirements
        for inside, outside in wiring.extra_files.items():
            assert Path(outside).name == Path(inside).name
            assert outside == f"models/{MODEL.file_name}"


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
    assert (context / INFERENCE.dockerfile).is_file()
    dockerfile = (REPO_ROOT / INFERENCE.dockerfile).read_text().replace("\\\n", " ")
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]
    assert copied
    for source in copied:
        assert (context / source).exists(), source
    staged = {str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()}
    assert not any(part in path for path in staged for part in (".venv", "node_modules", "__pycache__", "tests/"))
