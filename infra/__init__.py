"""The CDK app's constructs, one module per concern, assembled by ``infra.stack``.

The stack reads S3 key prefixes, service settings and the model registry from the same ``cutout``
package the functions run, so what is deployed and what runs cannot disagree.
"""

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _project_python() -> str:
    """The one Python version of the project, "3.13": pyproject.toml's requires-python."""
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r"==(\d+\.\d+)\.\*", requires)
    if not match:
        raise ValueError(f"requires-python must pin one minor version (==3.X.*), not {requires!r}")
    return match.group(1)


# Lambda's runtime, the inference image's base and the venv the tests run in.
PYTHON_VERSION = _project_python()
