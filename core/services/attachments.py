"""Attachments: uploads streamed into GridFS with a sniffed content type, and who may download them.

The content type is decided from the file's leading bytes (`filetype`), not from
what the client declares, and must be on the allow-list. An upload over the size
limit is aborted and nothing of it is kept.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import filetype
from beanie import PydanticObjectId
from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.asynchronous.grid_file import AsyncGridIn, AsyncGridOut
from gridfs.errors import NoFile
from pymongo.errors import PyMongoError

from core import topics
from core.documents import AttachmentRef, Conversation, Message, User
from core.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from core.payloads import AttachmentOut

log = logging.getLogger("mqchat.attachments")

BUCKET = "attachments"
SNIFF_BYTES = 262
MAX_FILENAME = 200


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_bytes: int
    allowed_types: tuple[str, ...]


def _bucket() -> AsyncGridFSBucket:
    return AsyncGridFSBucket(User.get_pymongo_collection().database, bucket_name=BUCKET)


def _clean_filename(filename: str | None) -> str:
    name = (filename or "file").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>') or "file"
    return name[:MAX_FILENAME]


def _kind(content_type: str) -> str:
    return "image" if content_type.startswith("image/") else "file"


def attachment_out(ref: AttachmentRef) -> AttachmentOut:
    """The contract's attachment view; `url` downloads it (for those allowed)."""
    return AttachmentOut(
        id=ref.id, filename=ref.filename, content_type=ref.content_type, size=ref.size,
        url=f"/api/attachments/{ref.id}", kind=ref.kind,
    )  # fmt: skip


async def store_upload(uploader: User, filename: str | None, chunks: AsyncIterator[bytes], limits: UploadLimits) -> AttachmentRef:
    """Stream an upload into GridFS; 415 if its real type is not allowed, 413 past the size limit."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    guessed = filetype.guess(head[:SNIFF_BYTES]) if head else None
    content_type = guessed.mime if guessed else "application/octet-stream"
    if content_type not in limits.allowed_types:
        raise UnsupportedMediaType(f"files of type {content_type} are not accepted")
    name = _clean_filename(filename)
    upload = _bucket().open_upload_stream(
        name, metadata={"uploader_id": str(uploader.id), "content_type": content_type, "kind": _kind(content_type)}
    )
    size = len(head)
    try:
        if size > limits.max_bytes:
            raise PayloadTooLarge(f"files are limited to {limits.max_bytes} bytes")
        await upload.write(head)
        async for chunk in chunks:
            size += len(chunk)
            if size > limits.max_bytes:
                raise PayloadTooLarge(f"files are limited to {limits.max_bytes} bytes")
            await upload.write(chunk)
        await upload.close()
    except BaseException:
        await _discard(upload)
        raise
    return AttachmentRef(id=str(upload._id), filename=name, content_type=content_type, size=size, kind=_kind(content_type))  # type: ignore[arg-type]


async def _discard(upload: AsyncGridIn) -> None:
    """Remove an unfinished upload. Closing and deleting works on MongoDB and nx-27017 alike
    (nx-27017 fails `abort()` of a file that was never closed; see docs/store.md)."""
    try:
        if not upload.closed:
            await upload.close()
        await _bucket().delete(upload._id)
    except PyMongoError:
        log.exception("attachments.discard_failed", extra={"attachment_id": str(upload._id)})


async def _file(attachment_id: str) -> AsyncGridOut | None:
    if not topics.is_object_id(attachment_id):
        return None
    try:
        return await _bucket().open_download_stream(ObjectId(attachment_id))
    except NoFile:
        return None


def _ref(grid_out: AsyncGridOut) -> AttachmentRef:
    meta = grid_out.metadata or {}
    return AttachmentRef(
        id=str(grid_out._id), filename=grid_out.filename or "file", content_type=meta.get("content_type", "application/octet-stream"),
        size=grid_out.length, kind=meta.get("kind", "file"),
    )  # fmt: skip


async def owned_by(uploader_id: str, attachment_ids: list[str]) -> list[AttachmentRef]:
    """The uploads named by `attachment_ids`, all of which must be `uploader_id`'s own."""
    refs = []
    for attachment_id in dict.fromkeys(attachment_ids):
        grid_out = await _file(attachment_id)
        if grid_out is None or (grid_out.metadata or {}).get("uploader_id") != uploader_id:
            raise InvalidInput("attachments must be your own uploads")
        refs.append(_ref(grid_out))
    return refs


async def open_for(user_id: str, attachment_id: str) -> tuple[AttachmentRef, AsyncGridOut]:
    """The file if `user_id` uploaded it or belongs to a conversation where a message shows it; NotFound otherwise."""
    grid_out = await _file(attachment_id)
    if grid_out is None:
        raise NotFound("attachment not found")
    if (grid_out.metadata or {}).get("uploader_id") != user_id and not await _shown_to(user_id, attachment_id):
        raise NotFound("attachment not found")
    return _ref(grid_out), grid_out


async def _shown_to(user_id: str, attachment_id: str) -> bool:
    showing = await Message.find({"attachment_ids": attachment_id, "deleted": {"$ne": True}}).to_list()
    for conversation_id in {m.conversation_id for m in showing}:
        conversation = await Conversation.get(PydanticObjectId(conversation_id))
        if conversation is not None and user_id in conversation.participant_ids:
            return True
    return False


async def uploads_of(uploader_id: str) -> list[AttachmentRef]:
    """Every file `uploader_id` uploaded (a data export or an erasure)."""
    return [_ref(grid_out) async for grid_out in _bucket().find({"metadata.uploader_id": uploader_id})]


async def delete_uploads_of(uploader_id: str) -> int:
    """Delete every file `uploader_id` uploaded, content and all; how many there were."""
    refs = await uploads_of(uploader_id)
    for ref in refs:
        await _bucket().delete(ObjectId(ref.id))
    return len(refs)
