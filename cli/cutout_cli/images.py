"""What a local image is, judged by its first bytes, and where its cutout is written."""

from pathlib import Path

# Enough leading bytes to tell every accepted format apart (WebP needs 12).
SNIFF_BYTES = 12
ACCEPTED_TYPES_TEXT = "JPEG, PNG or WebP"
OUTPUT_FORMATS = ("png", "webp", "mask")
# A mask is a greyscale PNG; only webp output changes the file type.
OUTPUT_EXTENSIONS = {"png": "png", "webp": "webp", "mask": "png"}


def sniff_content_type(head: bytes) -> str | None:
    """The upload content type of an image from its magic number, or None for anything else.

    The name is not trusted: S3 checks the declared type against the signed one, and the
    normalize stage checks the real bytes, so a wrong guess here only fails the job later.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_file(path: Path) -> str | None:
    with path.open("rb") as image:
        return sniff_content_type(image.read(SNIFF_BYTES))


def cutout_path(image: Path, output_format: str, out_dir: Path | None = None) -> Path:
    """`<stem>-cutout.<ext>` in out_dir, or next to the input when out_dir is None."""
    folder = image.parent if out_dir is None else out_dir
    return folder / f"{image.stem}-cutout.{OUTPUT_EXTENSIONS[output_format]}"
