"""Reading one file field of a multipart/form-data request as a stream of chunks (nothing spooled to disk)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from litestar import Request
from multipart import ParserError, PushMultipartParser, parse_options_header

from core.errors import InvalidInput, PayloadTooLarge

MAX_OVERHEAD = 64 * 1024  # multipart headers and other small fields around the file


@dataclass
class FilePart:
    """The named file field: its filename and an iterator over its bytes."""

    filename: str | None
    chunks: AsyncIterator[bytes]


async def file_part(request: Request, field: str, max_bytes: int) -> FilePart:
    """Find `field` in the multipart body; its chunks are read from the network as they are consumed."""
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    if media_type != "multipart/form-data" or not options.get("boundary"):
        raise InvalidInput("send the file as multipart/form-data")
    parser = PushMultipartParser(options["boundary"], max_segment_count=10)
    body = request.stream()
    budget = max_bytes + MAX_OVERHEAD

    async def events() -> AsyncIterator[object]:
        nonlocal budget
        try:
            async for chunk in body:
                budget -= len(chunk)
                if budget < 0:
                    raise PayloadTooLarge(f"files are limited to {max_bytes} bytes")
                for event in parser.parse(chunk):
                    yield event
            for event in parser.parse(b""):
                yield event
        except ParserError as exc:
            raise InvalidInput(f"malformed multipart body: {exc}") from None

    stream = events()
    async for event in stream:
        if event is None or isinstance(event, bytes) or event.name != field:  # type: ignore[union-attr]
            continue
        segment = event

        async def content() -> AsyncIterator[bytes]:
            async for piece in stream:
                if piece is None:
                    return
                yield piece  # type: ignore[misc]

        return FilePart(segment.filename, content())  # type: ignore[union-attr]
    raise InvalidInput(f"the multipart field {field!r} is missing")
