"""The per-token rate limit: never more than burst + rate x time, and a refused request
told to wait `w` seconds gets through after `w`."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.collect.limits import RateLimiter, TokenBucket, retry_after

steps = st.lists(
    st.tuples(st.integers(1, 500), st.floats(0, 2, allow_nan=False)), min_size=1, max_size=60
)


@given(st.floats(1, 5000), st.integers(500, 5000), steps)
def test_property_admitted_events_never_exceed_burst_plus_rate_times_time(
    rate: float, burst: int, requests: list[tuple[int, float]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now, admitted = 1000.0, []  # (time, events) of each admitted request
    for events, gap in requests:
        now += gap
        if bucket.take(events, now) == 0:
            admitted.append((now, events))
    # Every window [start, end] of admitted requests holds at most burst + rate x width.
    for i, (start, _) in enumerate(admitted):
        total = 0
        for at, events in admitted[i:]:
            total += events
            assert total <= burst + rate * (at - start) + 1e-6


@given(st.floats(1, 5000), st.integers(500, 5000), steps, st.integers(1, 500))
def test_property_a_refused_request_fits_after_the_wait_it_was_given(
    rate: float, burst: int, requests: list[tuple[int, float]], events: int
) -> None:
    bucket = TokenBucket(rate, burst)
    now = 0.0
    for taken, gap in requests:
        now += gap
        bucket.take(taken, now)
    wait = bucket.take(events, now)
    assert wait >= 0
    if wait:
        # Not taken when refused: a tiny bit earlier it still does not fit.
        assert bucket.take(events, now + wait * 0.99) > 0
        assert bucket.take(events, now + wait + 1e-9) == 0


def test_a_full_bucket_admits_the_burst_at_once_then_the_rate() -> None:
    bucket = TokenBucket(rate=100, burst=1000)
    assert bucket.take(1000, 0.0) == 0
    assert bucket.take(1, 0.0) == pytest.approx(0.01)
    assert bucket.take(100, 1.0) == 0  # refilled 100 in a second
    assert bucket.take(1001, 100.0) == math.inf  # never: more than the bucket holds


def test_a_clock_stepping_back_refills_nothing() -> None:
    bucket = TokenBucket(rate=10, burst=10)
    assert bucket.take(10, 100.0) == 0
    assert bucket.take(1, 50.0) > 0
    assert bucket.take(10, 101.0) == 0


def test_tokens_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate=1, burst=10)
    assert limiter.take(1, 10, 0.0) == 0
    assert limiter.take(1, 1, 0.0) > 0
    assert limiter.take(2, 10, 0.0) == 0


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after(w) for w in (0.001, 1.0, 1.01, 59.5)] == [1, 1, 2, 60]


@pytest.mark.parametrize(("rate", "burst"), [(0, 10), (-1, 10), (1, 0), (math.nan, 10)])
def test_a_limit_that_could_admit_nothing_is_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="expected"):
        RateLimiter(rate, burst)
