"""The image types an upload may be, and how each is told from its first bytes.

The real type is decided from these signatures only (normalize), never from the file name or
the declared type; clients learn the same signatures from ``GET /v1/limits`` to pick the
``content_type`` they declare.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    """Bytes at an offset of the file; every signature of a type must match."""

    offset: int
    data: bytes

    def matches(self, head: bytes) -> bool:
        return head[self.offset : self.offset + len(self.data)] == self.data


@dataclass(frozen=True)
class UploadType:
    content_type: str
    pillow_format: str
    signatures: tuple[Signature, ...]

    def matches(self, head: bytes) -> bool:
        return all(signature.matches(head) for signature in self.signatures)


UPLOAD_TYPES = (
    UploadType("image/jpeg", "JPEG", (Signature(0, b"\xff\xd8\xff"),)),
    UploadType("image/png", "PNG", (Signature(0, b"\x89PNG\r\n\x1a\n"),)),
    UploadType("image/webp", "WEBP", (Signature(0, b"RIFF"), Signature(8, b"WEBP"))),
)
ACCEPTED_UPLOAD_TYPES = tuple(upload_type.content_type for upload_type in UPLOAD_TYPES)
# Enough of a file's start to match every signature.
SIGNATURE_BYTES = max(s.offset + len(s.data) for upload_type in UPLOAD_TYPES for s in upload_type.signatures)


def sniff_upload_type(head: bytes) -> UploadType | None:
    return next((upload_type for upload_type in UPLOAD_TYPES if upload_type.matches(head)), None)
