"""The architecture knob: every function, the layer's and zips' wheels, and the inference image
follow it. arm64 cannot run on this x86 host (nor on LocalStack here): these assertions on the
synthesized stack and on the pip arguments are all the testing it gets."""

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra import bundling, functions
from infra.bundling import LocalBundling, package_cache_key, pip_target
from infra.settings import SettingsError, StackSettings
from infra.stack import CutoutStack
from infra.wiring import FUNCTIONS, INFERENCE
from tests.support.stack_synthesis import app_for

X86_TAGS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
ARM_TAGS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")


class ArchitectureStack:
    """A synth with the architecture set, which keeps what the template does not show: the image
    assets' platforms (the cloud assembly's asset manifest) and the architecture every zip and
    the layer were bundled for."""

    def __init__(self, overrides: dict):
        self.bundled_for: list[str] = []
        original = functions.bundled_code

        def recording(*args, architecture: str, **kwargs):
            self.bundled_for.append(architecture)
            return original(*args, architecture=architecture, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(functions, "bundled_code", recording)
            app = app_for(overrides)
            self.settings = StackSettings.from_context(app.node)
            stack = CutoutStack(app, self.settings.stack_name, self.settings)
            self.resources = Template.from_stack(stack).to_json()["Resources"]
        assembly = app.synth()
        manifest = json.loads((Path(assembly.directory) / f"{stack.artifact_id}.assets.json").read_text())
        self.image_platforms = [image["source"].get("platform") for image in manifest.get("dockerImages", {}).values()]

    def architectures(self) -> dict[str, list[str]]:
        """Each Cutout function's Architectures, by its wiring name."""
        by_service = {
            r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME"): r["Properties"]
            for r in self.resources.values()
            if r["Type"] == "AWS::Lambda::Function"
        }
        return {w.name: by_service[f"cutout-{w.name}"].get("Architectures") for w in FUNCTIONS}


@pytest.fixture(scope="module", params=["image", "zip"])
def default_stack(request) -> ArchitectureStack:
    return ArchitectureStack({"inference_packaging": request.param})


@pytest.fixture(scope="module", params=["image", "zip"])
def arm_stack(request) -> ArchitectureStack:
    return ArchitectureStack({"architecture": "arm64", "inference_packaging": request.param})


def test_cdk_json_deploys_on_x86_64(default_stack):
    assert default_stack.settings.architecture == "x86_64"
    assert default_stack.architectures() == {w.name: ["x86_64"] for w in FUNCTIONS}
    assert set(default_stack.bundled_for) == {"x86_64"}
    if default_stack.settings.inference_packaging == "image":
        assert default_stack.image_platforms == ["linux/amd64"]


def test_arm64_puts_every_function_on_graviton(arm_stack):
    assert arm_stack.architectures() == {w.name: ["arm64"] for w in FUNCTIONS}


def test_arm64_bundles_the_layer_and_every_zip_for_arm64(arm_stack):
    zipped = [w for w in FUNCTIONS if not (w.dockerfile and arm_stack.settings.inference_packaging == "image")]
    # The shared layer, then each zip function.
    assert arm_stack.bundled_for == ["arm64"] * (1 + len(zipped))


def test_arm64_builds_the_inference_image_for_arm64(arm_stack):
    if arm_stack.settings.inference_packaging != "image":
        assert arm_stack.image_platforms == []
        return
    assert INFERENCE.dockerfile
    assert arm_stack.image_platforms == ["linux/arm64"]


def test_the_architecture_is_read_from_the_command_line():
    assert StackSettings.from_context(app_for({"architecture": "arm64"}).node).architecture == "arm64"


@pytest.mark.parametrize("value", ["arm", "aarch64", "ARM64", "amd64", "x86-64"])
def test_an_unknown_architecture_fails_at_synth(value):
    with pytest.raises(SettingsError, match=r"^architecture must be x86_64 or arm64$"):
        StackSettings.from_context(app_for({"architecture": value}).node)


def test_x86_64_keeps_the_pip_arguments_and_so_the_cached_packages():
    """The same arguments as before the knob existed: the x86_64 cache under .local/ stays valid."""
    version = bundling.RUNTIME.name.removeprefix("python")
    assert pip_target("x86_64") == (
        "--no-compile",
        "--platform",
        "manylinux_2_28_x86_64",
        "--platform",
        "manylinux2014_x86_64",
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "cp",
    )


def test_arm64_asks_pip_for_aarch64_wheels_only():
    arguments = pip_target("arm64")
    platforms = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "--platform"]
    assert platforms == list(ARM_TAGS)
    assert not any("x86_64" in argument for argument in arguments)
    assert "--only-binary=:all:" in arguments
    # Everything but the platforms is the same for both.
    assert [a for a in arguments if a not in ARM_TAGS] == [a for a in pip_target("x86_64") if a not in X86_TAGS]


def test_the_package_cache_is_kept_per_architecture(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("somepackage==1.0\n")
    x86, arm = package_cache_key(requirements, "x86_64"), package_cache_key(requirements, "arm64")
    assert x86 != arm
    assert package_cache_key(requirements, "arm64") == arm


def test_each_architecture_installs_once_with_its_own_wheels(tmp_path, pip_installs):
    source = tmp_path / "function"
    source.mkdir()
    (source / "handler.py").write_text("def lambda_handler(event, context): ...\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("somepackage==1.0\n")
    for run, architecture in enumerate(("x86_64", "arm64", "arm64", "x86_64")):
        out = tmp_path / f"out{run}"
        LocalBundling(source, requirements=requirements, architecture=architecture).try_bundle(str(out), None)
        assert (out / "somepackage" / "__init__.py").is_file() and (out / "handler.py").is_file()
    x86_install, arm_install = pip_installs
    assert set(X86_TAGS) <= set(x86_install) and not set(ARM_TAGS) & set(x86_install)
    assert set(ARM_TAGS) <= set(arm_install) and not any("x86_64" in part for part in arm_install)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        package_cache_key(requirements, architecture) for architecture in ("x86_64", "arm64")
    )
