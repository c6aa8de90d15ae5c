"""TokenBucket, without servers: rate, burst, refill, and its bounded key map; SharedWindow, the limit
several API processes share, on the session's store."""

from __future__ import annotations

import secrets

import pytest

from core.ratelimit import TokenBucket
from core.services import rate_windows
from core.services.rate_windows import SharedWindow


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take("u") for _ in range(3)] == [None, None, None]
    assert bucket.take("u") == pytest.approx(0.5), "empty: one token comes back in 1/rate seconds"
    clock.now += 0.5
    assert bucket.take("u") is None and bucket.take("u") is not None


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    bucket.take("u")
    clock.now += 3600
    assert [bucket.take("u") is None for _ in range(3)] == [True, True, False]


def test_fractional_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=0.25, burst=1, clock=clock)
    assert bucket.take("u") is None
    assert bucket.take("u") == pytest.approx(4.0)


def test_keys_are_independent() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, clock=Clock())
    assert bucket.take("a") is None and bucket.take("a") is not None
    assert bucket.take("b") is None


def test_many_keys_stay_within_the_bound_forgetting_the_least_recently_used() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, clock=Clock(), max_keys=100)
    assert bucket.take("busy") is None
    for n in range(10_000):
        bucket.take(f"user-{n}")
        if n % 50 == 0:
            assert bucket.take("busy") is not None, "a key in use is remembered (still empty)"
        assert len(bucket) <= 100
    assert bucket.take("user-0") is None, "a forgotten key starts again with a full bucket"


async def test_a_shared_window_is_one_allowance_sliding_over_the_previous_window(store: None) -> None:
    clock = Clock()
    clock.now = 3_000_000.0  # the start of a 3 s window (windows are aligned on the clock)
    key = secrets.token_hex(6)
    first, second = (SharedWindow("test", rate=1.0, burst=3, clock=clock) for _ in range(2))  # two processes
    assert [await first.take(key), await second.take(key), await first.take(key)] == [None, None, None]
    assert await second.take(key) == pytest.approx(4.0), "full: 1 s into the next window, 2/3 of these 3 still count"
    assert await first.take(secrets.token_hex(6)) is None, "keys are independent"
    clock.now += 3.9
    assert await first.take(key) is not None
    clock.now += 0.1
    assert await first.take(key) is None
    assert await second.take(key) == pytest.approx(1.0), "one more as the previous window's share drops to 1/3"
    clock.now += 1.0
    assert await second.take(key) is None and await first.take(key) is not None
    clock.now += 7.0
    assert [await first.take(key) for _ in range(4)] == [None, None, None, pytest.approx(4.0)], "two windows later: a full burst"


async def test_a_limit_of_one_refuses_concurrent_takers_but_one_and_windows_are_swept(store: None) -> None:
    import asyncio

    clock = Clock()
    clock.now = 6_000_000.0
    key = secrets.token_hex(6)
    window = SharedWindow("test", rate=0.1, burst=1, clock=clock)
    answers = await asyncio.gather(*(window.take(key) for _ in range(10)))
    assert sum(answer is None for answer in answers) == 1, answers
    await rate_windows.sweep(int(clock.now * 1000) + 10_000)  # during the next window this one still counts
    assert await window.take(key) is not None
    await rate_windows.sweep(int(clock.now * 1000) + 20_001)
    assert await window.take(key) is None, "swept once it no longer counts"
