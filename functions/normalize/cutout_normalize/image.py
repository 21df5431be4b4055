"""Turn uploaded bytes into the prepared source inference reads, or refuse them with a reason.

The prepared source is an upright, metadata-free JPEG (opaque images) or PNG (images with
transparency) whose longest side is at most ``max_output_side``. Nothing here touches AWS.
"""

import io
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from cutout.errors import ErrorCode, JobRejected
from cutout.formats import sniff_upload_type
from cutout.settings import Settings

# Measured in bench/normalize.py: q95 4:2:0 keeps photos visually lossless and encodes and
# decodes several times faster than any PNG setting; PNG is kept for alpha only.
JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 1
# After the JPEG draft at most 2x is left to reduce. There bicubic lands 46.5 dB from Lanczos
# on a detailed photo (closer than JPEG q95 itself) at about half its time (24 MP -> 4096 px:
# ~460 vs ~850-1090 ms); bilinear is faster again but visibly softer (38.5 dB).
RESIZE_FILTER = Image.Resampling.BICUBIC
# A reduction of more than 2 x this gap starts with reduce(), a box average by a whole factor,
# and leaves the filter 3-6x: the filter's coefficient tables grow with the factor (1 x 50 M
# -> 1 x 4096 in one step: GBs). 32768 x 1525 -> 4096 x 191 in two steps lands 51.4 dB from
# Lanczos against one step's 52.3 dB, in half the time (209 vs 404 ms).
REDUCING_GAP = 3.0
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
SHRINKABLE_AS_DECODED = ("L", "LA", "RGB", "RGBA")
# APP14 (Adobe) says how a JPEG's components are coded; every other APPn and COM is metadata.
JPEG_ADOBE_MARKER = 0xEE
JPEG_COMMENT_MARKER = 0xFE
JPEG_EOI = b"\xff\xd9"
JPEG_SOS_MARKER = 0xDA


@dataclass(frozen=True)
class PreparedImage:
    body: bytes
    content_type: str
    width: int
    height: int
    reencoded: bool


def prepare(data: bytes, declared_length: int, settings: Settings) -> PreparedImage:
    """The prepared source for an upload, or JobRejected saying what is wrong with it."""
    check_length(data, declared_length)
    image_format = sniff_format(data)
    # Pillow's own bomb check, raised at our limit, is the second guard behind check_pixels.
    Image.MAX_IMAGE_PIXELS = settings.max_input_pixels
    # Pillow inflates each PNG text chunk, and the ICC profile with them, to 1 MB by default,
    # which refuses valid photos with a larger profile (dropped here anyway). Up to the upload's
    # own size is accepted; text chunks stay bounded together by MAX_TEXT_MEMORY (64 MB).
    PngImagePlugin.MAX_TEXT_CHUNK = settings.max_upload_bytes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[image_format])
            check_pixels(image, settings)
            check_still(image)
            if can_pass_through(image, settings.max_output_side):
                return pass_through(image, data)
            image = decode_capped(image, settings.max_output_side)
            ImageOps.exif_transpose(image, in_place=True)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise too_many_pixels(settings.max_input_pixels) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise JobRejected(
            ErrorCode.CORRUPT_IMAGE,
            f"the {image_format} image is damaged or incomplete and cannot be read",
            {"format": image_format.lower()},
        ) from error
    return encode(image)


def check_length(data: bytes, declared_length: int) -> None:
    if not data:
        raise JobRejected(ErrorCode.EMPTY_UPLOAD, "the uploaded file is empty")
    if len(data) != declared_length:
        raise JobRejected(
            ErrorCode.SIZE_MISMATCH,
            f"the upload is {len(data)} bytes but {declared_length} bytes were announced",
            {"declared_bytes": declared_length, "received_bytes": len(data)},
        )


def sniff_format(data: bytes) -> str:
    """The Pillow format the bytes' signature names: the file name and declared type are ignored."""
    upload_type = sniff_upload_type(data)
    if upload_type is None:
        raise JobRejected(ErrorCode.UNSUPPORTED_FORMAT, "the file is not a JPEG, PNG or WebP image")
    return upload_type.pillow_format


def too_many_pixels(limit: int) -> JobRejected:
    return JobRejected(
        ErrorCode.TOO_MANY_PIXELS,
        f"the image has more than {limit} pixels; please upload a smaller image",
        {"max_pixels": limit},
    )


def check_pixels(image: Image.Image, settings: Settings) -> None:
    """Refuse a decompression bomb from the size in its header, before a pixel is decoded.

    The area bounds the pixels; the side bounds what a sliver costs beyond its area (Pillow
    keeps a pointer per row, and each copy of a 1 x 50,000,000 image has 400 MB of them).
    """
    width, height = image.size
    if width * height > settings.max_input_pixels:
        raise too_many_pixels(settings.max_input_pixels)
    if max(width, height) > settings.max_input_side:
        raise JobRejected(
            ErrorCode.TOO_MANY_PIXELS,
            f"the image is {width}x{height} pixels and no side may be longer than "
            f"{settings.max_input_side} pixels; please upload a smaller image",
            {"max_side": settings.max_input_side},
        )


def check_still(image: Image.Image) -> None:
    """Animated images are refused rather than cut to their first frame, which would silently
    return something other than what the user sees. An MPO is a still photo that carries extra
    frames (depth maps, previews): its first frame is the photo."""
    if image.format != "MPO" and getattr(image, "is_animated", False):
        raise JobRejected(
            ErrorCode.UNSUPPORTED_FORMAT,
            "animated images are not supported; please upload a still image",
            {"frames": image.n_frames},
        )


def orientation(image: Image.Image) -> int:
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def can_pass_through(image: Image.Image, max_side: int) -> bool:
    """A YCbCr or greyscale JPEG that is upright and small enough needs no new pixels."""
    return (
        image.format in ("JPEG", "MPO")
        and image.mode in ("RGB", "L")
        and max(image.size) <= max_side
        and orientation(image) not in range(2, 9)
    )


def pass_through(image: Image.Image, data: bytes) -> PreparedImage:
    """The upload's own compressed pixels without its metadata: no generation loss, no encode.

    Decoding at 1/8 scale still reads every entropy-coded byte, so a damaged or truncated
    stream is refused exactly as a full decode would refuse it, at a third of the cost.
    """
    width, height = image.size
    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
    image.load()
    return PreparedImage(strip_jpeg_metadata(data), "image/jpeg", width, height, reencoded=False)


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The JPEG up to its first end-of-image marker, without EXIF, XMP, ICC, IPTC, comments and
    thumbnails. What follows the end (a ZIP in a polyglot, MPO extra frames) is dropped too."""
    kept = [data[:2]]
    position = 2
    while (position := data.find(b"\xff", position)) != -1 and position + 1 < len(data):
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if data.startswith(JPEG_EOI, position):
            break
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        is_metadata = (0xE0 <= marker <= 0xEF and marker != JPEG_ADOBE_MARKER) or marker == JPEG_COMMENT_MARKER
        if marker == JPEG_SOS_MARKER:
            end = entropy_coded_end(data, end)
        if not is_metadata:
            kept.append(data[position:end])
        position = end
    kept.append(JPEG_EOI)
    return b"".join(kept)


def entropy_coded_end(data: bytes, position: int) -> int:
    """Where a scan's entropy-coded bytes end: the first 0xFF that is neither a stuffed 0x00
    nor a restart marker."""
    while (position := data.find(b"\xff", position)) != -1 and position + 1 < len(data):
        following = data[position + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7:
            return position
        position += 2
    return len(data)


def decode_capped(image: Image.Image, max_side: int) -> Image.Image:
    """Decoded pixels in RGB or RGBA, the longest side at most max_side.

    For a JPEG, draft() lets libjpeg decode at 1/2, 1/4 or 1/8 scale, never below the target,
    which skips most of the decoding work; the filter then takes it to the exact size. Grey and
    colour images are shrunk before they are converted, so the conversion copies only the small
    image (the same pixels either way); palettes, colour keys and 16-bit samples are converted
    first, since resizing them as stored would change what a pixel means.
    """
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return to_rgb_or_rgba(image)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    image.draft(image.mode, target)
    if image.mode in SHRINKABLE_AS_DECODED and "transparency" not in image.info:
        return to_rgb_or_rgba(image.resize(target, RESIZE_FILTER, reducing_gap=REDUCING_GAP))
    return to_rgb_or_rgba(image).resize(target, RESIZE_FILTER, reducing_gap=REDUCING_GAP)


def to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is not fully opaque."""
    image.load()
    if image.mode == "RGB" and not image.has_transparency_data:
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        # Pillow clips 16-bit samples to 255 on conversion, which turns the image white.
        image = image.point(lambda value: value / 256)
    if image.mode == "RGBA":
        converted = image  # convert() would copy it: 200 MB more at 50 MP
    else:
        converted = image.convert("RGBA") if image.has_transparency_data else image.convert("RGB")
    if converted.mode == "RGBA" and converted.getextrema()[3][0] == 255:
        converted = converted.convert("RGB")
    return converted


def encode(image: Image.Image) -> PreparedImage:
    # Pillow's PNG writer carries the upload's ICC profile over from info; nothing of it may.
    image.info.clear()
    buffer = io.BytesIO()
    if image.mode == "RGBA":
        image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        content_type = "image/png"
    else:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
        content_type = "image/jpeg"
    return PreparedImage(buffer.getvalue(), content_type, image.width, image.height, reencoded=True)
