"""Conversations kept in memory by long-running processes: the embedded broker and the bridge.

Every delivery on `chat/conversations/{cid}/...` asks the broker whether the
receiver is a member, and every batch of sends asks the bridge for the
conversation (membership, numbering) and for what the send rules derive from it
(a block between a direct conversation's two members, whether a ticket's
conversation is closed). Both keep them here; the services publish
`chat/system/membership` after a change to any of it (members, a block, a ticket
closed), and each process drops the conversation, with what was derived from it,
as soon as that notice arrives. The TTL only bounds staleness if a notice were
ever lost; the size bound (least recently used first) bounds memory.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from cachetools import TTLCache

from core.decoding import UNDECODABLE
from core.documents import Conversation
from core.services.lookup import get_by_id

DEFAULT_TTL = 30.0  # default of MQCHAT_CONVERSATION_CACHE_TTL
DEFAULT_SIZE = 10_000  # default of MQCHAT_CONVERSATION_CACHE_SIZE
T = TypeVar("T")
Derive = Callable[[Conversation], Awaitable[T]]


@dataclass(slots=True)
class _Entry:
    conversation: Conversation | None
    derived: dict[Derive[Any], Any] = field(default_factory=dict)  # by the function that derived it


class ConversationCache:
    """conversation id -> Conversation (or None: no such conversation), loaded from the store on demand."""

    def __init__(self, ttl: float = DEFAULT_TTL, max_size: int = DEFAULT_SIZE, timer: Callable[[], float] = time.monotonic) -> None:
        self._entries: TTLCache[str, _Entry] = TTLCache(max_size, ttl, timer)

    def __len__(self) -> int:
        """Conversations held now (not expired)."""
        return len(self._entries)

    async def get(self, conversation_id: str) -> Conversation | None:
        """The conversation (None if there is no such conversation)."""
        entry = self._entries.get(conversation_id)
        if entry is None:
            entry = _Entry(await self._load(conversation_id))
            self._entries[conversation_id] = entry
        return entry.conversation

    async def derived(self, conversation: Conversation, derive: Derive[T]) -> T:
        """What `derive` finds about `conversation` (got from `get`), asked of the store once and kept
        beside it until the conversation is forgotten (a notice, the TTL). Not kept if the
        conversation was forgotten or reloaded since `get` returned it."""
        entry = self._entries.get(str(conversation.id))
        if entry is None or entry.conversation is not conversation:
            return await derive(conversation)
        if derive not in entry.derived:
            entry.derived[derive] = await derive(conversation)
        return entry.derived[derive]  # type: ignore[no-any-return]

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        """True when `user_id` belongs to the conversation (unknown conversations have no members)."""
        conversation = await self.get(conversation_id)
        return conversation is not None and user_id in conversation.participant_ids

    def invalidate(self, conversation_id: str) -> None:
        """Forget one conversation and what was derived from it."""
        self._entries.pop(conversation_id, None)

    def clear(self) -> None:
        """Forget everything (e.g. after notices may have been missed)."""
        self._entries.clear()

    def apply_notice(self, payload: bytes) -> bool:
        """Forget the conversation a `chat/system/membership` notice names; False if the notice is malformed."""
        try:
            self.invalidate(str(msgspec.json.decode(payload)["conversation_id"]))
        except (*UNDECODABLE, KeyError, TypeError):
            return False
        return True

    @staticmethod
    async def _load(conversation_id: str) -> Conversation | None:
        return await get_by_id(Conversation, conversation_id)


class Uncached:
    """The reads of a ConversationCache with nothing kept: for one-off callers (a REST request)."""

    async def get(self, conversation_id: str) -> Conversation | None:
        return await get_by_id(Conversation, conversation_id)

    async def derived(self, conversation: Conversation, derive: Derive[T]) -> T:
        return await derive(conversation)
