"""Hostile and odd uploads, generated, each with the outcome Cutout owes it.

Shared by the unit tests of the normalize stage and by the end-to-end suite, which pushes the
same cases over HTTP. A case is the bytes a client uploads, the content type (and file name)
it declares, the length it announces, and either the error code the job must fail with or the
prepared image it must produce. Expectations assume the documented default limits.

It also names the extreme shapes those limits allow or just refuse, and measures the peak memory
of preparing an input in a fresh process (the memory test and bench/normalize.py share both).
"""

import io
import math
import random
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms

from cutout.errors import ErrorCode
from cutout.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "data"
LIMITS = Settings()
JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
# The upright test photo has a pure red block in its top-left corner, so a check of one pixel
# tells whether an EXIF-rotated copy came out upright and unmirrored.
MARKER_BOX = (0, 0, 90, 60)
MARKER_RED = (255, 0, 0)
# The transposition that stores an upright image under each EXIF orientation (the inverse of
# what a viewer applies to display it).
STORED_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
GPS_TEXT = "52.5200N 13.4050E secret place"
# How black_png lays out each mode: PNG colour type, bit depth, bytes per pixel.
PNG_LAYOUTS = {
    "L": (0, 8, 1),
    "I;16": (0, 16, 2),
    "RGB": (2, 8, 3),
    "LA": (4, 8, 2),
    "RGBA": (6, 8, 4),
    "RGBA;16": (6, 16, 8),
}
ZERO_BLOCK = 4 * 1024 * 1024
# Over Pillow's default 1 MB limit on each decompressed PNG text chunk and ICC profile.
LARGE_ICC_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    content_type: str
    error: ErrorCode | None = None
    # (width, height, content type) of the prepared image when the upload is accepted.
    prepared: tuple[int, int, str] | None = None
    filename: str | None = None
    announced_length: int | None = None

    @property
    def content_length(self) -> int:
        """The length the client announces: the real one unless the case lies about it."""
        return len(self.body) if self.announced_length is None else self.announced_length


def photo(name: str = "chelsea", size: tuple[int, int] | None = None) -> Image.Image:
    image = Image.open(DATA / f"{name}.png").convert("RGB")
    return image.resize(size, Image.Resampling.LANCZOS) if size else image


def marked_photo() -> Image.Image:
    image = photo()
    image.paste(MARKER_RED, MARKER_BOX)
    return image


def encoded(image: Image.Image, image_format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with one tiny compressed row."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def black_png(width: int, height: int, mode: str = "RGB") -> bytes:
    """A complete, valid PNG of width x height zero samples (black, and transparent when it has
    alpha), built without ever holding its pixels: unfiltered scanlines of zeros are nothing but
    zero bytes, so the zlib stream is one deflated block of zeros repeated. 1 x 50,000,000 RGB
    comes to ~200 KB in a tenth of a second."""
    colour_type, bit_depth, pixel_bytes = PNG_LAYOUTS[mode]
    blocks, rest = divmod(height * (1 + width * pixel_bytes), ZERO_BLOCK)
    zeros = bytes(ZERO_BLOCK)
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(zeros, checksum)
    checksum = zlib.adler32(zeros[:rest], checksum)

    def deflated_zeros(length: int) -> bytes:
        # A full flush ends the block on a byte boundary with no reference back into it, so
        # copies of it can follow one another.
        compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return compressor.compress(zeros[:length]) + compressor.flush(zlib.Z_FULL_FLUSH)

    final_empty_block = b"\x03\x00"
    stream = (
        b"\x78\xda"
        + deflated_zeros(ZERO_BLOCK) * blocks
        + deflated_zeros(rest)
        + final_empty_block
        + struct.pack(">I", checksum)
    )
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def jpeg_bomb(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to declare width x height."""
    data = bytearray(encoded(photo(size=(64, 48)), "JPEG"))
    frame = data.find(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_with_text_bomb() -> bytes:
    """A valid PNG carrying a compressed text chunk that inflates to 50 MB."""
    data = encoded(photo(size=(32, 32)), "PNG")
    bomb = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"a" * 50_000_000, 9))
    return data[:33] + bomb + data[33:]


def png_with_text_chunks_over_text_memory() -> bytes:
    """Four compressed text chunks of 20 MB each: every one is under the per-chunk limit, all of
    them together over Pillow's 64 MB bound on the text a PNG may hold."""
    data = encoded(photo(size=(32, 32)), "PNG")
    chunk = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(bytes(20_000_000), 9))
    return data[:33] + chunk * 4 + data[33:]


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def large_icc_profile() -> bytes:
    """A real sRGB profile grown to LARGE_ICC_BYTES by random padding after its tags, the size
    in its header to match: LittleCMS still opens and applies it."""
    profile = srgb_profile()
    padded = profile + random.Random(11).randbytes(LARGE_ICC_BYTES - len(profile))
    return struct.pack(">I", LARGE_ICC_BYTES) + padded[4:]


def png_with_damaged_pixels() -> bytes:
    data = bytearray(encoded(photo(), "PNG"))
    pixels = data.find(b"IDAT") + 4
    data[pixels + 2 : pixels + 400] = bytes(398)
    return bytes(data)


def rotated_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(marked_photo().transpose(STORED_FOR_ORIENTATION[orientation]), "JPEG", quality=95, exif=exif)


def jpeg_with_metadata() -> bytes:
    """A JPEG carrying EXIF with GPS text, XMP, an ICC profile and a comment, all to be stripped."""
    exif = Image.Exif()
    exif[0x010E] = GPS_TEXT
    exif[0x8825] = {1: "N", 3: "E"}
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><location>{GPS_TEXT}</location></x:xmpmeta>'.encode()
    icc = b"\x00\x00\x02\x0cICC profile " + GPS_TEXT.encode()
    return encoded(photo(), "JPEG", exif=exif, xmp=xmp, icc_profile=icc, comment=GPS_TEXT)


def sixteen_bit_grey_png() -> bytes:
    """A left-to-right ramp over the full 16-bit range."""
    ramp = Image.linear_gradient("L").rotate(90).resize((256, 64))
    wide = ramp.point(lambda value: value * 257, "I").convert("I;16")
    return encoded(wide, "PNG")


def transparent_palette_png() -> bytes:
    image = photo(size=(120, 80)).quantize(63)
    # A 64th palette entry no photo pixel uses, so only the pasted left half is transparent.
    image.putpalette(image.getpalette() + [0, 0, 0])
    image.paste(63, (0, 0, 60, 80))
    return encoded(image, "PNG", transparency=63)


def rgb_png_with_transparent_colour() -> bytes:
    image = photo(size=(120, 80))
    image.paste((1, 2, 3), (0, 0, 60, 80))
    return encoded(image, "PNG", transparency=(1, 2, 3))


def frames(image_format: str) -> bytes:
    first, second = photo(size=(80, 60)), photo("coffee", (80, 60))
    return encoded(first, image_format, save_all=True, append_images=[second], duration=100, loop=0)


def rgba_photo(opaque: bool) -> Image.Image:
    image = photo(size=(200, 150)).convert("RGBA")
    if not opaque:
        image.putalpha(Image.linear_gradient("L").resize((200, 150)))
    return image


def oversized_upload() -> bytes:
    """A real JPEG padded one byte past the upload limit, announced as exactly the limit."""
    image = encoded(photo(), "JPEG")
    return image + bytes(LIMITS.max_upload_bytes + 1 - len(image))


def build_cases() -> list[Case]:
    jpeg = encoded(photo(), "JPEG", quality=90)
    png = encoded(photo("astronaut"), "PNG")
    webp = encoded(photo("coffee"), "WEBP", quality=80)
    svg = (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(1)</script></svg>"
    )
    fake_heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + random.Random(7).randbytes(2000)
    rejected = ErrorCode
    return [
        Case("empty", b"", JPEG, rejected.EMPTY_UPLOAD),
        Case("random-bytes", random.Random(3).randbytes(4096), JPEG, rejected.UNSUPPORTED_FORMAT),
        Case("plain-text", b"this is not an image\n" * 20, PNG, rejected.UNSUPPORTED_FORMAT),
        Case("pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", PNG, rejected.UNSUPPORTED_FORMAT),
        Case("svg-with-script", svg, PNG, rejected.UNSUPPORTED_FORMAT, filename="logo.svg"),
        Case("gif", encoded(photo(), "GIF"), PNG, rejected.UNSUPPORTED_FORMAT, filename="cat.gif"),
        Case("animated-gif", frames("GIF"), PNG, rejected.UNSUPPORTED_FORMAT),
        Case("tiff", encoded(photo(), "TIFF"), JPEG, rejected.UNSUPPORTED_FORMAT, filename="scan.tif"),
        Case("bmp", encoded(photo(), "BMP"), PNG, rejected.UNSUPPORTED_FORMAT),
        Case("avif", encoded(photo(), "AVIF"), WEBP, rejected.UNSUPPORTED_FORMAT),
        Case("real-heic-header", fake_heic, JPEG, rejected.UNSUPPORTED_FORMAT, filename="IMG_0001.HEIC"),
        Case("riff-wave-not-webp", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64), WEBP, rejected.UNSUPPORTED_FORMAT),
        Case("jpeg-signature-only", b"\xff\xd8\xff", JPEG, rejected.CORRUPT_IMAGE),
        Case("truncated-jpeg", jpeg[: len(jpeg) // 2], JPEG, rejected.CORRUPT_IMAGE),
        Case("truncated-png", png[: len(png) // 2], PNG, rejected.CORRUPT_IMAGE),
        Case("truncated-webp", webp[: len(webp) // 2], WEBP, rejected.CORRUPT_IMAGE),
        Case("png-damaged-pixel-data", png_with_damaged_pixels(), PNG, rejected.CORRUPT_IMAGE),
        Case("png-text-chunk-bomb", png_with_text_bomb(), PNG, rejected.CORRUPT_IMAGE),
        Case("png-pixel-bomb", png_bomb(100_000, 100_000), PNG, rejected.TOO_MANY_PIXELS),
        Case("png-just-over-pixel-limit", png_bomb(LIMITS.max_input_pixels + 1, 1), PNG, rejected.TOO_MANY_PIXELS),
        Case("jpeg-pixel-bomb", jpeg_bomb(60_000, 60_000), JPEG, rejected.TOO_MANY_PIXELS),
        # Within the pixel limit but one pixel thin: decoding and resizing them took 2-3.3 GB.
        Case("png-1x50000000-sliver", black_png(1, LIMITS.max_input_pixels), PNG, rejected.TOO_MANY_PIXELS),
        Case("png-50000000x1-sliver", black_png(LIMITS.max_input_pixels, 1), PNG, rejected.TOO_MANY_PIXELS),
        Case("png-just-over-side-limit", black_png(1, LIMITS.max_input_side + 1), PNG, rejected.TOO_MANY_PIXELS),
        Case("png-text-chunks-over-text-memory", png_with_text_chunks_over_text_memory(), PNG, rejected.CORRUPT_IMAGE),
        Case("animated-webp", frames("WEBP"), WEBP, rejected.UNSUPPORTED_FORMAT),
        Case("animated-png", frames("PNG"), PNG, rejected.UNSUPPORTED_FORMAT),
        Case("announced-length-too-long", jpeg, JPEG, rejected.SIZE_MISMATCH, announced_length=len(jpeg) + 100),
        Case("announced-length-too-short", jpeg, JPEG, rejected.SIZE_MISMATCH, announced_length=len(jpeg) - 1),
        Case("over-size-limit", oversized_upload(), JPEG, rejected.TOO_LARGE, announced_length=LIMITS.max_upload_bytes),
        Case("photo-jpeg", jpeg, JPEG, prepared=(451, 300, JPEG), filename="chelsea.jpg"),
        Case("photo-png", png, PNG, prepared=(512, 512, JPEG)),
        Case("photo-webp", webp, WEBP, prepared=(600, 400, JPEG)),
        Case("heic-named-jpeg", jpeg, JPEG, prepared=(451, 300, JPEG), filename="IMG_0042.HEIC"),
        Case("jpeg-declared-as-png", jpeg, PNG, prepared=(451, 300, JPEG), filename="photo.png"),
        Case("png-declared-as-webp", png, WEBP, prepared=(512, 512, JPEG)),
        Case("progressive-jpeg", encoded(photo(), "JPEG", progressive=True), JPEG, prepared=(451, 300, JPEG)),
        Case("greyscale-jpeg", encoded(photo().convert("L"), "JPEG"), JPEG, prepared=(451, 300, JPEG)),
        Case("cmyk-jpeg", encoded(photo().convert("CMYK"), "JPEG"), JPEG, prepared=(451, 300, JPEG)),
        Case("jpeg-with-metadata", jpeg_with_metadata(), JPEG, prepared=(451, 300, JPEG)),
        Case(
            "polyglot-jpeg-zip",
            jpeg + b"PK\x03\x04" + bytes(200) + b"PK\x05\x06" + bytes(18),
            JPEG,
            prepared=(451, 300, JPEG),
        ),
        Case("mpo-photo-with-depth-frame", frames("MPO"), JPEG, prepared=(80, 60, JPEG)),
        Case("png-16-bit-grey", sixteen_bit_grey_png(), PNG, prepared=(256, 64, JPEG)),
        Case("png-16-bit-rgb", encoded(photo(), "PNG", bits=16), PNG, prepared=(451, 300, JPEG)),
        Case("palette-png-with-transparency", transparent_palette_png(), PNG, prepared=(120, 80, PNG)),
        Case("rgb-png-with-transparent-colour", rgb_png_with_transparent_colour(), PNG, prepared=(120, 80, PNG)),
        Case("palette-png-opaque", encoded(photo().quantize(32), "PNG"), PNG, prepared=(451, 300, JPEG)),
        Case(
            "greyscale-alpha-png", encoded(rgba_photo(opaque=False).convert("LA"), "PNG"), PNG, prepared=(200, 150, PNG)
        ),
        Case("bilevel-png", encoded(photo().convert("1"), "PNG"), PNG, prepared=(451, 300, JPEG)),
        Case("rgba-png-fully-opaque", encoded(rgba_photo(opaque=True), "PNG"), PNG, prepared=(200, 150, JPEG)),
        Case(
            "webp-lossless-with-alpha",
            encoded(rgba_photo(opaque=False), "WEBP", lossless=True),
            WEBP,
            prepared=(200, 150, PNG),
        ),
        Case("one-pixel-jpeg", encoded(Image.new("RGB", (1, 1), "white"), "JPEG"), JPEG, prepared=(1, 1, JPEG)),
        Case("one-pixel-png", encoded(Image.new("RGBA", (1, 1), (0, 0, 0, 0)), "PNG"), PNG, prepared=(1, 1, PNG)),
        Case("wide-20000x10-png", encoded(photo(size=(20_000, 10)), "PNG"), PNG, prepared=(4096, 2, JPEG)),
        Case("png-at-side-limit", black_png(LIMITS.max_input_side, 1), PNG, prepared=(4096, 1, JPEG)),
        Case(
            "png-with-large-icc-profile",
            encoded(photo(), "PNG", icc_profile=large_icc_profile()),
            PNG,
            prepared=(451, 300, JPEG),
        ),
        Case(
            "transparent-png-with-large-icc-profile",
            encoded(rgba_photo(opaque=False), "PNG", icc_profile=large_icc_profile()),
            PNG,
            prepared=(200, 150, PNG),
        ),
        Case(
            "transparent-webp-with-icc-profile",
            encoded(rgba_photo(opaque=False), "WEBP", lossless=True, icc_profile=srgb_profile()),
            WEBP,
            prepared=(200, 150, PNG),
        ),
        Case("tall-10x20000-jpeg", encoded(photo(size=(10, 20_000)), "JPEG"), JPEG, prepared=(2, 4096, JPEG)),
        Case("large-photo-jpeg", encoded(photo(size=(5000, 3326)), "JPEG"), JPEG, prepared=(4096, 2725, JPEG)),
        *(
            Case(f"exif-orientation-{o}", rotated_jpeg(o), JPEG, prepared=(451, 300, JPEG), filename=f"rotated-{o}.jpg")
            for o in STORED_FOR_ORIENTATION
        ),
    ]


CASES = build_cases()
CASES_BY_NAME = {case.name: case for case in CASES}

# The extreme shapes of the default limits, (width, height): the slivers the side limit refuses
# although their area is allowed, and the largest images accepted, long and square.
PANORAMA_SHORT_SIDE = LIMITS.max_input_pixels // LIMITS.max_input_side
EXTREME_SHAPES = {
    "tall sliver": (1, LIMITS.max_input_pixels),
    "wide sliver": (LIMITS.max_input_pixels, 1),
    "tall at the side limit": (PANORAMA_SHORT_SIDE, LIMITS.max_input_side),
    "wide at the side limit": (LIMITS.max_input_side, PANORAMA_SHORT_SIDE),
    "square at the pixel limit": (math.isqrt(LIMITS.max_input_pixels),) * 2,
}
# The child reads its own peak from VmHWM: ru_maxrss would report the parent's when that was
# larger, since Linux carries it over fork and exec (a 1 GB parent's child read 1035 MB).
PREPARE_AND_REPORT = """
import sys
from cutout.errors import JobRejected
from cutout.settings import Settings
from cutout_normalize.image import prepare
data = sys.stdin.buffer.read()
try:
    prepared = prepare(data, len(data), Settings())
    outcome = f"{prepared.width}x{prepared.height} {prepared.content_type}"
except JobRejected as refused:
    outcome = refused.code.value
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(peak_kb * 1024, outcome)
"""


def prepare_in_fresh_process(data: bytes) -> tuple[int, str]:
    """Peak RSS in bytes of a new interpreter that prepares data at the default limits (the
    upload's bytes and the interpreter included, as in the Lambda), and the outcome: the
    prepared size and type, or the error code. Shared by the memory test and bench/normalize.py."""
    answer = subprocess.run([sys.executable, "-c", PREPARE_AND_REPORT], input=data, capture_output=True, check=True)
    peak, outcome = answer.stdout.decode().split(maxsplit=1)
    return int(peak), outcome.strip()
