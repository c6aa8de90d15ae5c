"""Read watermarks: each member's last read `seq`, unread counts, receipts when a watermark moves."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from core.clock import iso, to_ms, utcnow
from core.documents import Conversation, Message, ReadState
from core.errors import NotFound
from core.services.lookup import get_by_id

UNREAD_COUNT_CAP = 1000  # counting stops here: a fully unread conversation costs a bounded scan


async def read_states(conversation_id: str) -> dict[str, int]:
    """Each member's read watermark (user id -> last read seq), read as stored (no ReadState built)."""
    states = ReadState.get_pymongo_collection().find({"conversation_id": conversation_id}, {"user_id": 1, "last_read_seq": 1})
    return {state["user_id"]: state["last_read_seq"] for state in await states.to_list()}


async def unread_count(conversation: Conversation, user_id: str) -> int:
    """Messages of others after the user's watermark, deleted ones excluded; at most UNREAD_COUNT_CAP."""
    conversation_id = str(conversation.id)
    state = await ReadState.get(f"{conversation_id}:{user_id}")
    return await Message.find(
        {"conversation_id": conversation_id, "seq": {"$gt": state.last_read_seq if state else 0},
         "sender_id": {"$ne": user_id}, "deleted": {"$ne": True}}
    ).limit(UNREAD_COUNT_CAP).count()  # fmt: skip


@dataclass(frozen=True, slots=True)
class Receipt:
    """A watermark that moved forward."""

    conversation_id: str
    user_id: str
    message_id: str
    seq: int
    at: str


async def mark_read(conversation: Conversation, user_id: str, message_id: str) -> tuple[int, Receipt | None]:
    """Move the user's watermark up to `message_id`; (unread count, the receipt if it moved)."""
    conversation_id = str(conversation.id)
    message = await get_by_id(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise NotFound("message not found")
    now = utcnow()
    try:
        result = await ReadState.get_pymongo_collection().update_one(
            {"_id": f"{conversation_id}:{user_id}", "last_read_seq": {"$lt": message.seq}},
            {"$set": {"conversation_id": conversation_id, "user_id": user_id, "last_read_seq": message.seq,
                      "message_id": message_id, "at_ms": to_ms(now)}},
            upsert=True,
        )  # fmt: skip
        moved = result.modified_count > 0 or result.upserted_id is not None
    except DuplicateKeyError:  # the watermark is already further on
        moved = False
    receipt = Receipt(conversation_id, user_id, message_id, message.seq, iso(now) or "") if moved else None
    return await unread_count(conversation, user_id), receipt
