"""One synthesis per packaging (and one with every knob turned) per session: synth takes seconds."""

import pytest

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
