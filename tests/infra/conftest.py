"""One synthesis per packaging (and one with every knob turned) per session: synth takes seconds.
And pip, faked for the bundling's package cache."""

import subprocess
from pathlib import Path

import pytest

from infra import bundling
from tests.support.stack_synthesis import TUNED, Synthesized


@pytest.fixture(scope="session")
def image_stack() -> Synthesized:
    return Synthesized()


@pytest.fixture(scope="session")
def zip_stack() -> Synthesized:
    return Synthesized({"inference_packaging": "zip"})


@pytest.fixture(scope="session")
def tuned_stack() -> Synthesized:
    return Synthesized(TUNED)


@pytest.fixture(scope="session", params=["image", "zip", "tuned"])
def any_stack(request) -> Synthesized:
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture
def pip_installs(tmp_path, monkeypatch) -> list[list[str]]:
    """Every pip command the bundling runs, in an empty package cache; each install leaves
    `somepackage` and a handler.py that a function's own code must win over."""
    monkeypatch.setattr(bundling, "PACKAGE_CACHE", tmp_path / "cache")
    installs = []

    def fake_pip(command, check):
        installs.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "somepackage").mkdir()
        (target / "somepackage" / "__init__.py").write_text("")
        (target / "handler.py").write_text("# a package's file that the function's own code must win over\n")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    return installs
