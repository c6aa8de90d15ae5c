"""The contract's message view, from a Message or a document of `messages` as stored, with the
preview of the message a reply quotes."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from core.clock import iso
from core.documents import SYSTEM_SENDER, AttachmentRef, Message
from core.payloads import MessageOut, ReplyPreview
from core.services import attachments
from core.services.lookup import get_by_id

StoredMessage = Mapping[str, Any]  # a document of the `messages` collection, as stored
Previews = Mapping[str, ReplyPreview]  # quoted message id -> its preview
PREVIEW_LENGTH = 100  # characters of the quoted body a reply shows


def message_out(message: Message, watermarks: dict[str, int], previews: Previews) -> MessageOut:
    """The contract's message view; `read_by` lists members (not the sender) whose watermark reached it."""
    return stored_message_out(message.stored_form(), watermarks, previews)


def stored_message_out(stored: StoredMessage, watermarks: dict[str, int], previews: Previews) -> MessageOut:
    """`message_out` of a message as stored (`Message.stored_form()` or a raw document of `messages`)."""
    seq, sender_id, reply_to = stored["seq"], stored["sender_id"], stored.get("reply_to")
    return MessageOut(
        id=str(stored["_id"]),
        conversation_id=stored["conversation_id"],
        seq=seq,
        sender_id=_sender(sender_id),
        client_msg_id=stored["client_msg_id"],
        kind=stored["kind"],
        body=stored["body"],
        attachments=[attachments.attachment_out(AttachmentRef.model_validate(ref)) for ref in stored.get("attachments", ())],
        reply_to=reply_to,
        created_at=iso(stored["created_at"]) or "",
        edited_at=iso(stored.get("edited_at")),
        deleted=stored.get("deleted", False),
        read_by=sorted(uid for uid, read in watermarks.items() if read >= seq and uid != sender_id),
        reply_preview=previews.get(reply_to) if reply_to else None,
    )


async def reply_previews(replies: Iterable[StoredMessage], known: Iterable[Message] = ()) -> dict[str, ReplyPreview]:
    """Previews of the messages these quote: one query per conversation (by the stored `reply_to_seq`);
    none for the quoted messages the caller already read (`known`)."""
    previews = {str(message.id): _preview(message.stored_form()) for message in known}
    wanted: dict[str, set[int]] = defaultdict(set)
    unnumbered: set[str] = set()  # quoted before reply_to_seq was stored
    for stored in replies:
        if stored.get("reply_to") and stored["reply_to"] not in previews:
            if stored.get("reply_to_seq") is not None:
                wanted[stored["conversation_id"]].add(stored["reply_to_seq"])
            else:
                unnumbered.add(stored["reply_to"])
    found = await asyncio.gather(
        *(Message.get_pymongo_collection().find({"conversation_id": cid, "seq": {"$in": sorted(seqs)}}).to_list()
          for cid, seqs in wanted.items()),
        *(_stored_by_id(message_id) for message_id in unnumbered),
    )  # fmt: skip
    quoted = [stored for group in found for stored in group]
    return previews | {str(stored["_id"]): _preview(stored) for stored in quoted}


async def _stored_by_id(message_id: str) -> list[StoredMessage]:
    message = await get_by_id(Message, message_id)
    return [message.stored_form()] if message else []


def _preview(stored: StoredMessage) -> ReplyPreview:
    body = stored["body"]
    return ReplyPreview(
        id=str(stored["_id"]), seq=stored["seq"], sender_id=_sender(stored["sender_id"]), kind=stored["kind"],
        body=body if len(body) <= PREVIEW_LENGTH else body[: PREVIEW_LENGTH - 1] + "…",
        deleted=stored.get("deleted", False),
    )  # fmt: skip


def _sender(sender_id: str) -> str | None:
    return None if sender_id == SYSTEM_SENDER else sender_id
