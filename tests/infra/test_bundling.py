"""Local bundling: what goes into a zip or layer asset, and the per-requirements package cache."""

import sys
from pathlib import Path

import pytest

from infra import bundling
from infra.bundling import RUNTIME, LocalBundling


def test_the_tests_run_the_python_lambda_runs():
    """One constant (pyproject.toml's requires-python) gives the runtime and the venv's Python."""
    assert RUNTIME.name == f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def source(tmp_path) -> Path:
    folder = tmp_path / "function"
    (folder / "pkg" / "__pycache__").mkdir(parents=True)
    (folder / "handler.py").write_text("def lambda_handler(event, context): ...\n")
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    for not_shipped in ("requirements.txt", "Dockerfile", "Dockerfile.dockerignore"):
        (folder / not_shipped).write_text("")
    return folder


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_copies_the_code_and_not_what_lambda_does_not_run(source, tmp_path):
    out = tmp_path / "out"
    assert LocalBundling(source).try_bundle(str(out), None) is True
    assert files_in(out) == {"handler.py", "pkg/__init__.py"}


def test_a_layer_goes_under_its_prefix_and_extra_files_where_named(source, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    out = tmp_path / "out"
    LocalBundling(source, prefix="python", extra_files={"models/model.onnx": model}).try_bundle(str(out), None)
    assert files_in(out) == {"python/handler.py", "python/pkg/__init__.py", "python/models/model.onnx"}


def test_a_missing_extra_file_says_how_to_get_it(source, tmp_path):
    with pytest.raises(FileNotFoundError, match="make model"):
        LocalBundling(source, extra_files={"models/m.onnx": tmp_path / "absent.onnx"}).try_bundle(
            str(tmp_path / "o"), None
        )


def test_requirements_are_installed_once_for_lambdas_platform(source, tmp_path, pip_installs):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("somepackage==1.0\n")
    for run in ("first", "second"):
        out = tmp_path / run
        LocalBundling(source, requirements=requirements).try_bundle(str(out), None)
        assert files_in(out) == {"handler.py", "pkg/__init__.py", "somepackage/__init__.py"}
        assert "lambda_handler" in (out / "handler.py").read_text()
    (command,) = pip_installs
    assert command[command.index("--python-version") + 1] == bundling.RUNTIME.name.removeprefix("python")
    assert "--only-binary=:all:" in command and "manylinux_2_28_x86_64" in command

    requirements.write_text("somepackage==2.0\n")
    LocalBundling(source, requirements=requirements).try_bundle(str(tmp_path / "third"), None)
    assert len(pip_installs) == 2
