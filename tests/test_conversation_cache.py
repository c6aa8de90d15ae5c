"""ConversationCache, without servers: ids that cannot name a conversation are answered (None) without
the store, so these tests watch what the cache keeps: its size bound, its TTL, notices and invalidation."""

from __future__ import annotations

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
