"""What a local image is, judged by its first bytes, and where its cutout is written."""

from pathlib import Path

ACCEPTED_TYPES_TEXT = "JPEG, PNG or WebP"
OUTPUT_FORMATS = ("png", "webp", "mask", "jpeg")
# A mask is a greyscale PNG.
OUTPUT_EXTENSIONS = {"png": "png", "webp": "webp", "mask": "png", "jpeg": "jpg"}


def sniff_content_type(head: bytes, upload_types: list[dict]) -> str | None:
    """The content type of the first of the API's upload types (``upload_types`` of GET /v1/limits)
    all of whose signatures, hex bytes at an offset, match head; None when none does.

    The name is not trusted: S3 checks the declared type against the signed one, and the
    normalize stage checks the real bytes, so a wrong guess here only fails the job later.
    """

    def matches(signature: dict) -> bool:
        expected = bytes.fromhex(signature["hex"])
        return head[signature["offset"] : signature["offset"] + len(expected)] == expected

    return next(
        (upload_type["content_type"] for upload_type in upload_types if all(map(matches, upload_type["signatures"]))),
        None,
    )


def sniff_file(path: Path, upload_types: list[dict]) -> str | None:
    signatures = [signature for upload_type in upload_types for signature in upload_type["signatures"]]
    head_bytes = max((signature["offset"] + len(signature["hex"]) // 2 for signature in signatures), default=0)
    with path.open("rb") as image:
        return sniff_content_type(image.read(head_bytes), upload_types)


def cutout_path(image: Path, output_format: str, out_dir: Path | None = None) -> Path:
    """`<stem>-cutout.<ext>` in out_dir, or next to the input when out_dir is None."""
    folder = image.parent if out_dir is None else out_dir
    return folder / f"{image.stem}-cutout.{OUTPUT_EXTENSIONS[output_format]}"
