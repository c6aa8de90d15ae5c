"""The contract's message view, from a Message or a document of `messages` as stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.clock import iso
from core.documents import SYSTEM_SENDER, AttachmentRef, Message
from core.payloads import MessageOut
from core.services import attachments

StoredMessage = Mapping[str, Any]  # a document of the `messages` collection, as stored


def message_out(message: Message, watermarks: dict[str, int]) -> MessageOut:
    """The contract's message view; `read_by` lists members (not the sender) whose watermark reached it."""
    return stored_message_out(message.stored_form(), watermarks)


def stored_message_out(stored: StoredMessage, watermarks: dict[str, int]) -> MessageOut:
    """`message_out` of a message as stored (`Message.stored_form()` or a raw document of `messages`)."""
    seq, sender_id = stored["seq"], stored["sender_id"]
    return MessageOut(
        id=str(stored["_id"]),
        conversation_id=stored["conversation_id"],
        seq=seq,
        sender_id=None if sender_id == SYSTEM_SENDER else sender_id,
        client_msg_id=stored["client_msg_id"],
        kind=stored["kind"],
        body=stored["body"],
        attachments=[attachments.attachment_out(AttachmentRef.model_validate(ref)) for ref in stored.get("attachments", ())],
        reply_to=stored.get("reply_to"),
        created_at=iso(stored["created_at"]) or "",
        edited_at=iso(stored.get("edited_at")),
        deleted=stored.get("deleted", False),
        read_by=sorted(uid for uid, read in watermarks.items() if read >= seq and uid != sender_id),
    )
