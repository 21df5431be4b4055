"""What a client needs to know before it submits: the body of ``GET /v1/limits``, whose OpenAPI
schema is made from these definitions too.

The web page and the CLI read it instead of copying numbers, types or statuses.
"""

from dataclasses import asdict, dataclass

from cutout.formats import UPLOAD_TYPES
from cutout.jobs import CANCELLABLE_STATUSES, TERMINAL_STATUSES, JobStatus
from cutout.output import OutputFormat
from cutout.settings import Settings


@dataclass(frozen=True)
class ByteSignature:
    offset: int
    hex: str  # the bytes at offset, as hexadecimal


@dataclass(frozen=True)
class AcceptedType:
    """An image type an upload may declare, and the signatures its bytes must all match."""

    content_type: str
    signatures: list[ByteSignature]


@dataclass(frozen=True)
class ServiceLimits:
    max_upload_bytes: int
    max_input_pixels: int
    max_input_side: int
    max_output_side: int
    upload_url_ttl_s: int
    result_ttl_s: int
    max_batch_jobs: int  # the most jobs POST /v1/batches takes
    upload_types: list[AcceptedType]
    output_formats: list[OutputFormat]
    terminal_statuses: list[JobStatus]
    cancellable_statuses: list[JobStatus]  # where DELETE /v1/jobs/{id} cancels a job


def service_limits(settings: Settings) -> dict:
    return asdict(
        ServiceLimits(
            max_upload_bytes=settings.max_upload_bytes,
            max_input_pixels=settings.max_input_pixels,
            max_input_side=settings.max_input_side,
            max_output_side=settings.max_output_side,
            upload_url_ttl_s=settings.upload_url_ttl_s,
            result_ttl_s=settings.result_ttl_s,
            max_batch_jobs=settings.max_batch_jobs,
            upload_types=[
                AcceptedType(
                    upload_type.content_type, [ByteSignature(s.offset, s.data.hex()) for s in upload_type.signatures]
                )
                for upload_type in UPLOAD_TYPES
            ],
            output_formats=list(OutputFormat),
            terminal_statuses=sorted(TERMINAL_STATUSES),
            cancellable_statuses=sorted(CANCELLABLE_STATUSES),
        )
    )
