"""Lambda zip and layer assets bundled on this host, without Docker.

Third-party packages are pip-installed as Lambda's runtime needs them (manylinux wheels for its
CPython on the functions' architecture), once per requirements file and architecture: the result
is kept under .local/ so later synths, offline ones included, copy it instead of asking PyPI again.
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import PYTHON_VERSION, REPO_ROOT
from infra.settings import ARCHITECTURES

# Lambda's Python runtimes from 3.12 run on Amazon Linux 2023 (glibc 2.34); 3.11 ran on Amazon
# Linux 2 (glibc 2.26), where the pinned pillow and onnxruntime have no wheels (they need 2.28).
RUNTIME = getattr(lambda_.Runtime, "PYTHON_" + PYTHON_VERSION.replace(".", "_"))


def pip_target(architecture: str) -> tuple[str, ...]:
    """pip's arguments for wheels that run on Lambda's runtime, on that architecture."""
    machine = ARCHITECTURES[architecture].wheel_machine
    return (
        # This host's bytecode would not match the runtime's Python: Lambda compiles what it imports.
        "--no-compile",
        "--platform",
        f"manylinux_2_28_{machine}",
        "--platform",
        f"manylinux2014_{machine}",
        "--only-binary=:all:",
        "--python-version",
        RUNTIME.name.removeprefix("python"),
        "--implementation",
        "cp",
    )


PACKAGE_CACHE = REPO_ROOT / ".local" / "lambda-packages"
# Files in a source folder that are not part of what Lambda runs.
NOT_SHIPPED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.egg-info", "requirements.txt", "pyproject.toml", "Dockerfile*", "*.dockerignore"
)


def package_cache_key(requirements: Path, architecture: str) -> str:
    """The cache folder's name: what is installed, and for which platform."""
    return hashlib.sha256(requirements.read_bytes() + " ".join(pip_target(architecture)).encode()).hexdigest()[:16]


def installed_packages(requirements: Path, architecture: str) -> Path:
    """A folder holding the requirements installed for Lambda on that architecture, built on first use."""
    cached = PACKAGE_CACHE / package_cache_key(requirements, architecture)
    if not cached.is_dir():
        PACKAGE_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=PACKAGE_CACHE) as staging:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--requirement",
                    str(requirements),
                    "--target",
                    staging,
                    *pip_target(architecture),
                ],
                check=True,
            )
            # A complete folder appears at once, so an interrupted install is never taken for a cached one.
            Path(staging).rename(cached)
    return cached


@jsii.implements(ILocalBundling)
class LocalBundling:
    """Copies a source folder, extra files and (optionally) installed requirements into the asset."""

    def __init__(
        self,
        source: Path,
        *,
        prefix: str = "",
        requirements: Path | None = None,
        extra_files: Mapping[str, Path] | None = None,
        architecture: str = "x86_64",
    ):
        self._source = source
        self._architecture = architecture
        self._prefix = prefix
        self._requirements = requirements
        self._extra_files = extra_files or {}

    def try_bundle(self, output_dir: str, _docker_options) -> bool:
        root = Path(output_dir) / self._prefix
        if self._requirements is not None:
            shutil.copytree(installed_packages(self._requirements, self._architecture), root, dirs_exist_ok=True)
        shutil.copytree(self._source, root, ignore=NOT_SHIPPED, dirs_exist_ok=True)
        for inside, outside in self._extra_files.items():
            if not outside.is_file():
                raise FileNotFoundError(f"{outside} is missing: run `make model`")
            (root / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(outside, root / inside)
        return True


def bundled_code(
    source: str,
    *,
    prefix: str = "",
    requirements: str | None = None,
    extra_files: Mapping[str, str] | None = None,
    architecture: str,
) -> lambda_.Code:
    """Lambda code from a repository folder for that architecture, hashed by its bundled output (what is deployed)."""
    bundler = LocalBundling(
        REPO_ROOT / source,
        prefix=prefix,
        requirements=REPO_ROOT / requirements if requirements else None,
        extra_files={inside: REPO_ROOT / outside for inside, outside in (extra_files or {}).items()},
        architecture=architecture,
    )
    return lambda_.Code.from_asset(
        str(REPO_ROOT / source),
        asset_hash_type=AssetHashType.OUTPUT,
        # The image is never pulled: local bundling always succeeds or raises.
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=bundler),
    )
