"""The wiring description agrees with the code it describes."""

from pathlib import Path

import api_handler

from infra import REPO_ROOT
from infra.wiring import API, FUNCTIONS, MODEL

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
