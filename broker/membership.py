"""Conversation membership as the broker sees it: a short-lived cache over the store.

Every delivery on `chat/conversations/{cid}/...` asks `is_member`; the services
publish `chat/system/membership` after a membership change, and the broker drops
the cached entry at once (see broker.plugins.MembershipControlPlugin). The TTL
only bounds staleness if such a notice were ever lost.
"""

from __future__ import annotations

import time

from bson import ObjectId

from core import topics
from core.documents import Conversation

DEFAULT_TTL = 30.0


class MembershipCache:
    """conversation id -> member ids, loaded from the store on demand."""

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, frozenset[str]]] = {}

    async def is_member(self, conversation_id: str, user_id: str) -> bool:
        """True when `user_id` belongs to the conversation (unknown conversations have no members)."""
        entry = self._entries.get(conversation_id)
        if entry is None or entry[0] < time.monotonic():
            entry = (time.monotonic() + self._ttl, await self._load(conversation_id))
            self._entries[conversation_id] = entry
        return user_id in entry[1]

    def invalidate(self, conversation_id: str) -> None:
        """Forget the members of one conversation."""
        self._entries.pop(conversation_id, None)

    @staticmethod
    async def _load(conversation_id: str) -> frozenset[str]:
        if not topics.is_object_id(conversation_id):
            return frozenset()
        conversation = await Conversation.get(ObjectId(conversation_id))
        return frozenset(conversation.participant_ids) if conversation else frozenset()
