"""A job's output options: what `POST /v1/jobs` `output` may ask for, validated once, here.

The API parses the request's `output` object with ``OutputOptions.from_request`` (a 400 naming
each bad field otherwise), the job stores the options, and inference applies them in this order:
model alpha (within the source's own alpha) → crop to the subject plus margin → scale to
``max_side`` → composite over ``bg_color`` → encode.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum

from cutout.errors import ErrorCode, JobRejected

MIN_MAX_SIDE = 16
MAX_MAX_SIDE = 65535
MAX_MARGIN_PX = 500
MAX_MARGIN_PERCENT = 50
# A pixel belongs to the subject when the model's alpha (within the source's) is at least this:
# u2netp leaves faint alpha (1-2 of 255) over much of a background, which would make every box
# the whole image. Measured on tests/data: alpha > 0 widens the coffee cup's box by 23 px into
# haze on the table and stretches the astronaut's to the top edge; from 4 up to 128 every edge
# stays within 3 px of where it is at 8, so 8 is past the haze and well short of the subject.
SUBJECT_ALPHA_THRESHOLD = 8
DEFAULT_JPEG_BACKGROUND = "#FFFFFF"


class OutputFormat(StrEnum):
    PNG = "png"
    WEBP = "webp"
    MASK = "mask"
    JPEG = "jpeg"

    @property
    def content_type(self) -> str:
        return {OutputFormat.WEBP: "image/webp", OutputFormat.JPEG: "image/jpeg"}.get(self, "image/png")

    @property
    def extension(self) -> str:
        return {OutputFormat.WEBP: "webp", OutputFormat.JPEG: "jpg"}.get(self, "png")


_COLOR = re.compile(r"#([0-9A-Fa-f]{6})([0-9A-Fa-f]{2})?")
# ASCII digits only: Python's \d also takes other scripts' digits, which the documented pattern does not.
_MARGIN = re.compile(r"([0-9]{1,4})(px|%)")


@dataclass(frozen=True)
class Color:
    red: int
    green: int
    blue: int
    alpha: int = 255

    @classmethod
    def parse(cls, text: str) -> "Color":
        match = _COLOR.fullmatch(text)
        if not match:
            raise ValueError("must be #RRGGBB or #RRGGBBAA (hexadecimal)")
        rgb, alpha = match.groups()
        return cls(*bytes.fromhex(rgb), int(alpha, 16) if alpha else 255)

    @property
    def opaque(self) -> bool:
        return self.alpha == 255

    @property
    def rgba(self) -> tuple[int, int, int, int]:
        return self.red, self.green, self.blue, self.alpha

    def __str__(self) -> str:
        return "#" + bytes(self.rgba if not self.opaque else self.rgba[:3]).hex().upper()


@dataclass(frozen=True)
class CropMargin:
    amount: int
    unit: str  # "px" or "%" of the subject box's larger side

    @classmethod
    def parse(cls, text: str) -> "CropMargin":
        match = _MARGIN.fullmatch(text)
        if not match:
            raise ValueError('must be "<n>px" or "<n>%", e.g. "20px" or "5%"')
        margin = cls(int(match.group(1)), match.group(2))
        if margin.unit == "px" and margin.amount > MAX_MARGIN_PX:
            raise ValueError(f"must be at most {MAX_MARGIN_PX}px")
        if margin.unit == "%" and margin.amount > MAX_MARGIN_PERCENT:
            raise ValueError(f"must be at most {MAX_MARGIN_PERCENT}%")
        return margin

    def pixels(self, box_width: int, box_height: int) -> int:
        """The margin in pixels around a subject box of this size (a percentage rounds half up)."""
        if self.unit == "px":
            return self.amount
        return (self.amount * max(box_width, box_height) + 50) // 100

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class SubjectBox:
    """Where the subject is, in the result's pixel coordinates."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class OutputOptions:
    format: OutputFormat = OutputFormat.PNG
    bg_color: Color | None = None  # for jpeg, always set (DEFAULT_JPEG_BACKGROUND unless asked)
    crop: bool = False
    crop_margin: CropMargin | None = None
    max_side: int | None = None

    @classmethod
    def from_request(cls, output: Mapping | None) -> "OutputOptions":
        """The options a request's `output` object asks for, or JobRejected (bad_request) with
        `details.problems` naming each bad field as `output.<name>`."""
        output = {} if output is None else output
        problems: list[dict] = []

        def problem(name: str, message: str) -> None:
            problems.append({"field": f"output.{name}", "problem": message})

        if not isinstance(output, Mapping):
            raise JobRejected(
                ErrorCode.BAD_REQUEST,
                "the request body is not valid",
                {"problems": [{"field": "output", "problem": "must be an object"}]},
            )
        for unknown in sorted(set(output) - {option.name for option in fields(cls)}):
            problem(unknown, "is not an output option")
        output_format = OutputFormat.PNG
        if "format" in output:
            try:
                output_format = OutputFormat(output["format"])
            except ValueError:
                problem("format", f"must be one of {', '.join(f.value for f in OutputFormat)}")

        def parsed(name: str, parse, forms: str):
            """The option's string parsed, or None (absent, or a problem recorded)."""
            text = output.get(name)
            if text is None:
                return None
            try:
                if not isinstance(text, str):
                    raise ValueError(f"must be a string, {forms}")
                return parse(text)
            except ValueError as error:
                problem(name, str(error))
                return None

        bg_color = parsed("bg_color", Color.parse, "#RRGGBB or #RRGGBBAA")
        if output_format is OutputFormat.MASK and bg_color is not None:
            problem("bg_color", "does not apply to the mask format")
        if output_format is OutputFormat.JPEG:
            if bg_color is not None and not bg_color.opaque:
                problem("bg_color", "must be opaque (#RRGGBB or alpha FF) for jpeg, which has no transparency")
            bg_color = bg_color or Color.parse(DEFAULT_JPEG_BACKGROUND)
        crop = output.get("crop", False)
        if not isinstance(crop, bool):
            problem("crop", "must be true or false")
            crop = False
        crop_margin = parsed("crop_margin", CropMargin.parse, '"<n>px" or "<n>%"')
        if crop_margin is not None and not crop:
            problem("crop_margin", "applies only with crop: true")
        max_side = output.get("max_side")
        if max_side is not None and (
            isinstance(max_side, bool) or not isinstance(max_side, int) or not MIN_MAX_SIDE <= max_side <= MAX_MAX_SIDE
        ):
            problem("max_side", f"must be an integer from {MIN_MAX_SIDE} to {MAX_MAX_SIDE}")
            max_side = None
        if problems:
            raise JobRejected(ErrorCode.BAD_REQUEST, "the output options are not valid", {"problems": problems})
        return cls(output_format, bg_color, crop, crop_margin, max_side)

    def to_json(self) -> dict:
        """The applied options as the job's result echoes them (every field, null when unset)."""
        return {
            "format": self.format.value,
            "bg_color": None if self.bg_color is None else str(self.bg_color),
            "crop": self.crop,
            "crop_margin": None if self.crop_margin is None else str(self.crop_margin),
            "max_side": self.max_side,
        }


def _nullable(schema: dict) -> dict:
    return {**schema, "type": [schema["type"], "null"]}


# The JSON Schema of the `output` object, for the API document: what from_request takes (rules
# across fields are in the descriptions) and what to_json echoes.
OUTPUT_OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "Applied in this order: crop to the subject plus margin, scale to max_side, composite over "
    "bg_color, encode.",
    "properties": {
        "format": {
            "type": "string",
            "enum": [output_format.value for output_format in OutputFormat],
            "default": OutputFormat.PNG.value,
            "description": f"jpeg has no transparency: the cutout over bg_color ({DEFAULT_JPEG_BACKGROUND} unless "
            "given, opaque)",
        },
        "bg_color": _nullable(
            {
                "type": "string",
                "pattern": f"^{_COLOR.pattern}$",
                "description": "#RRGGBB or #RRGGBBAA: the cutout over this colour; png and webp stay RGBA when its "
                "alpha is under FF; not with mask",
            }
        ),
        "crop": {"type": "boolean", "default": False, "description": "crop the result to the subject's box"},
        "crop_margin": _nullable(
            {
                "type": "string",
                "pattern": f"^{_MARGIN.pattern}$",
                "description": f"only with crop: true; <n>px (at most {MAX_MARGIN_PX}) or <n>% (at most "
                f"{MAX_MARGIN_PERCENT}) of the subject box's larger side",
            }
        ),
        "max_side": _nullable(
            {
                "type": "integer",
                "minimum": MIN_MAX_SIDE,
                "maximum": MAX_MAX_SIDE,
                "description": "the result's longest side at most this; absent: the prepared source's size",
            }
        ),
    },
}
