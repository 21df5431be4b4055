"""The interpreter of a Python version on this host.

  python3 -m localdev.python            the project's interpreter (pyproject.toml's requires-python)
  python3 -m localdev.python --version  that version, e.g. 3.13

The Makefile builds the venv with it; LocalStack's runner finds its own Python the same way.
`pythonX.Y` on PATH is taken if it runs (a pyenv shim may not, unless its version is selected),
else the newest pyenv install of that version.
"""

import os
import subprocess
import sys
from pathlib import Path

from infra import PYTHON_VERSION


def _runs_as(command: str, version: str) -> bool:
    try:
        reported = subprocess.run(
            [command, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except OSError:
        return False
    return reported == version


def interpreter(version: str) -> str:
    candidates = [f"python{version}"]
    pyenv_versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installs = sorted(
        pyenv_versions.glob(f"{version}.*"), key=lambda p: [int(n) for n in p.name.split(".") if n.isdigit()]
    )
    candidates += [str(install / "bin" / f"python{version}") for install in reversed(installs)]
    for candidate in candidates:
        if _runs_as(candidate, version):
            return candidate
    raise RuntimeError(f"no Python {version} on this host (tried {', '.join(candidates)})")


def main(argv: list[str]) -> int:
    if argv == ["--version"]:
        print(PYTHON_VERSION)
        return 0
    try:
        print(interpreter(PYTHON_VERSION))
    except RuntimeError as error:
        print(f"localdev.python: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
