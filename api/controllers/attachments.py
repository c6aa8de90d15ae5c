"""`/api/attachments`: upload (streamed into GridFS) and download for those allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream
from litestar.status_codes import HTTP_201_CREATED

from api.multipart_stream import file_part
from core.documents import User
from core.payloads import AttachmentOut
from core.services import attachments
from core.services.attachments import UploadLimits
from core.settings import Settings


class AttachmentsController(Controller):
    path = "/api/attachments"
    tags = ["attachments"]

    @post("/", status_code=HTTP_201_CREATED, request_max_body_size=None)
    async def upload(
        self, request: Request, current_user: NamedDependency[User], settings: NamedDependency[Settings]
    ) -> AttachmentOut:
        """Upload one file (multipart field `file`); 413 above the size limit, 415 for a type not on the allow-list."""
        part = await file_part(request, "file", settings.attachment_max_bytes)
        limits = UploadLimits(settings.attachment_max_bytes, settings.attachment_types)
        ref = await attachments.store_upload(current_user, part.filename, part.chunks, limits)
        return attachments.attachment_out(ref)

    @get("/{attachment_id:str}")
    async def download(self, attachment_id: FromPath[str], current_user: NamedDependency[User]) -> Stream:
        """The file, for its uploader and members of a conversation where a message shows it (404 for anyone else)."""
        ref, grid_out = await attachments.open_for(str(current_user.id), attachment_id)

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await grid_out.readchunk():
                yield chunk

        disposition = "inline" if ref.kind == "image" else "attachment"
        return Stream(
            chunks(),
            media_type=ref.content_type,
            headers={
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(ref.filename)}",
                "Content-Length": str(ref.size),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=3600",
            },
        )
