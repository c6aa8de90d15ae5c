"""TokenBucket, without servers: rate, burst, refill, and its bounded key map."""

from __future__ import annotations

import pytest

from core.ratelimit import TokenBucket


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
