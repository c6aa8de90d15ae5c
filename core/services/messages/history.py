"""History: pages of stored messages, newest first behind a `before` cursor or oldest first after a `seq`."""

from __future__ import annotations

from cachetools import LRUCache

from core.documents import Conversation, Message
from core.errors import InvalidInput
from core.payloads import MessageOut
from core.services.lookup import get_by_id
from core.services.messages.receipts import read_states
from core.services.messages.views import StoredMessage, reply_previews, stored_message_out

DEFAULT_PAGE = 50
MAX_PAGE = 100


class CursorPositions:
    """Where paged-through messages sit: message id -> (conversation id, seq), at most `size` of them.

    A message keeps its conversation and seq forever (deletes leave tombstones), so
    any process may remember them: the `before` cursor of the next page is the last
    message of the page just served, and needs no lookup.
    """

    def __init__(self, size: int) -> None:
        self._known: LRUCache[str, tuple[str, int]] = LRUCache(size)

    def remember(self, page: list[StoredMessage]) -> None:
        """Note the position of every message of a page (the least recently used make room)."""
        for stored in page:
            self._known[str(stored["_id"])] = (stored["conversation_id"], stored["seq"])

    async def find(self, message_id: str) -> tuple[str, int] | None:
        """The message's (conversation id, seq), from memory or the store; None if there is no such message."""
        known = self._known.get(message_id)
        if known is None and (message := await get_by_id(Message, message_id)) is not None:
            known = (message.conversation_id, message.seq)
        return known


async def history(
    conversation_id: str, before: str | None, after_seq: int | None, limit: int | None, positions: CursorPositions
) -> tuple[list[StoredMessage], str | None]:
    """A page of stored messages: newest first (with `before` cursor), or oldest first after `after_seq`.

    The caller checked membership. Pages are read as stored documents, not Beanie
    documents: building 51 of those cost ~4 ms of a ~29 ms page (docs/benchmarks.md).
    """
    size = max(1, min(limit or DEFAULT_PAGE, MAX_PAGE))
    if after_seq is not None:
        return await _stored({"conversation_id": conversation_id, "seq": {"$gt": after_seq}}, 1, size), None
    query: dict[str, object] = {"conversation_id": conversation_id}
    if before is not None:
        position = await positions.find(before)
        if position is None or position[0] != conversation_id:
            raise InvalidInput("before must be a message of this conversation")
        query["seq"] = {"$lt": position[1]}
    page = await _stored(query, -1, size + 1)
    positions.remember(page)
    next_before = str(page[size - 1]["_id"]) if len(page) > size else None
    return page[:size], next_before


async def _stored(query: dict[str, object], order: int, limit: int) -> list[StoredMessage]:
    cursor = Message.get_pymongo_collection().find(query).sort([("seq", order)]).limit(limit)
    return await cursor.to_list()


async def last_message(conversation: Conversation) -> MessageOut | None:
    """The newest message of the conversation, if any."""
    conversation_id = str(conversation.id)
    top = await _stored({"conversation_id": conversation_id}, -1, 1)
    return stored_message_out(top[0], await read_states(conversation_id), await reply_previews(top)) if top else None
