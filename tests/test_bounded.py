"""Bounded in-memory maps of the bridge, without servers: the announced-message set (LRUSet) and the
typing map keep at most their configured number of entries, and what they forget costs no correctness."""

from __future__ import annotations

from bridge.pipeline import TYPING_REPEAT, Pipeline, Request
from core.bounded import LRUSet
from core.payloads import OutboxTyping
from core.settings import Settings


def test_lru_set_keeps_the_most_recent_within_its_bound() -> None:
    ids = LRUSet(100)
    for n in range(10_000):
        ids.add(f"m{n}")
        assert len(ids) <= 100
    assert "m9999" in ids and "m9900" in ids and "m9899" not in ids
    ids.discard("m9999")
    ids.discard("never")
    assert "m9999" not in ids and len(ids) == 99
    ids.clear()
    assert len(ids) == 0 and ids.maxsize == 100


def typing(user: str, conversation: str, is_typing: bool = True) -> Request:
    return Request(user, "typing", OutboxTyping(conversation_id=conversation, typing=is_typing))


def test_the_pipeline_maps_take_their_bounds_from_settings() -> None:
    pipeline = Pipeline(Settings().model_copy(update={"typing_keys": 7, "announced_ids": 9}), lambda: None)
    assert (pipeline._typing.maxsize, pipeline._announced.maxsize) == (7, 9)


def test_typing_flood_collapses_and_many_typists_stay_within_the_bound() -> None:
    pipeline = Pipeline(Settings().model_copy(update={"typing_keys": 100}), lambda: None)
    assert not pipeline._collapsed(typing("u1", "c1"))
    assert pipeline._collapsed(typing("u1", "c1")), f"the same indicator within {TYPING_REPEAT} s is collapsed"
    assert not pipeline._collapsed(typing("u1", "c1", False)), "a change always passes"
    for n in range(5_000):
        assert not pipeline._collapsed(typing(f"user-{n}", "c1"))
        assert len(pipeline._typing) <= 100
    assert pipeline._collapsed(typing("user-4999", "c1")), "recent typists are remembered (no wholesale clear)"
    assert not pipeline._collapsed(typing("user-0", "c1")), "a forgotten typist passes again: one extra indicator"
