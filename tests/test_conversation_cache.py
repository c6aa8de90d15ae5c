"""ConversationCache, without servers: ids that cannot name a conversation are answered (None) without
the store, so these tests watch what the cache keeps: its size bound, its TTL, notices and invalidation."""

from __future__ import annotations

from core.documents import Conversation
from core.services.conversation_cache import ConversationCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_many_conversations_stay_within_the_size_bound() -> None:
    cache = ConversationCache(ttl=30.0, max_size=50)
    for n in range(5_000):
        assert await cache.get(f"no-such-{n}") is None
        assert len(cache) <= 50
    assert not await cache.is_member("no-such-1", "u1"), "unknown conversations have no members"


async def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = ConversationCache(ttl=30.0, max_size=10, timer=clock)
    await cache.get("c1")
    clock.now = 29.0
    assert len(cache) == 1
    clock.now = 31.0
    assert len(cache) == 0, "expired: the next get loads again"


async def test_a_membership_notice_drops_its_conversation() -> None:
    cache = ConversationCache()
    await cache.get("c1")
    await cache.get("c2")
    assert cache.apply_notice(b'{"conversation_id": "c1", "added": ["u2"], "removed": []}')
    assert len(cache) == 1
    assert not cache.apply_notice(b"not json") and not cache.apply_notice(b"[]") and not cache.apply_notice(b"{}")
    cache.invalidate("c2")
    cache.invalidate("never-cached")
    assert len(cache) == 0
    await cache.get("c3")
    cache.clear()
    assert len(cache) == 0


class StoredConversations(ConversationCache):
    """A cache over conversations that always exist, so that what is derived from them can be watched without a store."""

    @staticmethod
    async def _load(conversation_id: str) -> Conversation | None:
        return Conversation.model_construct(id=conversation_id, kind="direct", participant_ids=["u1", "u2"])


async def test_what_is_derived_from_a_conversation_is_kept_until_it_is_forgotten() -> None:
    clock = Clock()
    cache = StoredConversations(ttl=30.0, timer=clock)
    asked: list[str] = []

    async def blocked(conversation: Conversation) -> set[str]:
        asked.append(str(conversation.id))
        return {"u2"}

    first = await cache.get("c1")
    assert first is not None
    assert await cache.derived(first, blocked) == {"u2"} and await cache.derived(first, blocked) == {"u2"}
    assert asked == ["c1"], "asked of the store once"
    assert cache.apply_notice(b'{"conversation_id": "c1", "added": [], "removed": []}')
    assert await cache.derived(first, blocked) == {"u2"} and asked == ["c1", "c1"], "a notice drops it with the conversation"
    assert await cache.derived(first, blocked) == {"u2"} and len(asked) == 3, "a forgotten conversation's answer is not kept"
    again = await cache.get("c1")
    assert again is not None and again is not first
    await cache.derived(again, blocked)
    await cache.derived(again, blocked)
    assert len(asked) == 4, "kept beside the reloaded conversation"
    clock.now = 31.0
    expired = await cache.get("c1")
    assert expired is not None and expired is not again
    await cache.derived(expired, blocked)
    assert len(asked) == 5, "and gone with it after the TTL"
