"""The benchmark suite's arithmetic: percentiles, rates, ratios, commit times."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import stats

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_percentile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 50) == 2.5
    assert stats.percentile(values, 100) == 4.0
    assert stats.percentile(values, 99) == pytest.approx(3.97)


def test_percentile_is_infinite_when_it_lands_on_a_never_stored_event() -> None:
    values = [0.1] * 98 + [stats.MISSING] * 2
    assert stats.percentile(values, 50) == 0.1
    assert math.isinf(stats.percentile(values, 99))


@pytest.mark.parametrize(("values", "q", "message"), [
    ([], 50, "at least one"), ([1.0], 101, "0 to 100"), ([1.0], -1, "0 to 100"),
])  # fmt: skip
def test_percentile_refuses_what_it_cannot_answer(
    values: list[float], q: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        stats.percentile(values, q)


@settings(max_examples=200)
@given(st.lists(finite, min_size=1, max_size=50), st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_monotone_and_within_the_range(
    values: list[float], q1: float, q2: float
) -> None:
    low, high = sorted((q1, q2))
    assert min(values) <= stats.percentile(values, low) <= stats.percentile(values, high)
    assert stats.percentile(values, high) <= max(values)


def test_spread_names_its_percentiles() -> None:
    spread = stats.spread([float(n) for n in range(1, 101)])
    assert spread.as_dict() == {"count": 100, "p50": 50.5, "p95": pytest.approx(95.05),
                                "p99": pytest.approx(99.01), "max": 100.0}  # fmt: skip


def test_sustained_rate_leaves_out_start_up_and_drain() -> None:
    # 1000 events stored one per millisecond, after a 5 s start-up for the first 50.
    stamps = [5.0 + i / 1000 for i in range(1000)]
    stamps[:50] = [0.0] * 50
    assert stats.sustained_rate(stamps, trim=0.1) == pytest.approx(1000, rel=0.01)


def test_sustained_rate_needs_two_events_and_a_sane_trim() -> None:
    with pytest.raises(ValueError, match="at least two"):
        stats.sustained_rate([1.0])
    with pytest.raises(ValueError, match="trim"):
        stats.sustained_rate([1.0, 2.0], trim=0.5)


def test_progress_rate_interpolates_between_samples() -> None:
    samples = [(0.0, 0), (10.0, 0), (20.0, 1000), (30.0, 1000)]
    # 10% (100) is reached at t=11, 90% (900) at t=19: 800 events in 8 s.
    assert stats.progress_rate(samples, 1000) == pytest.approx(100.0)
    assert math.isnan(stats.progress_rate(samples, 5000))


def test_ratio() -> None:
    assert stats.ratio(10, 4) == 2.5
    assert math.isinf(stats.ratio(1, 0))
    assert math.isnan(stats.ratio(0, 0))
    with pytest.raises(ValueError, match="non-negative"):
        stats.ratio(-1, 1)


def test_latencies_count_never_stored_events_as_missing() -> None:
    sent = {"a": 1.0, "b": 2.0}
    assert stats.latencies(sent, {"a": 1.5}) == [0.5, stats.MISSING]


def test_commit_times_take_the_first_poll_past_the_offset() -> None:
    polls = [(1.0, {0: 0}), (2.0, {0: 3, 1: 1}), (3.0, {0: 2, 1: 5})]
    positions = {"a": (0, 0), "b": (0, 2), "c": (0, 3), "d": (1, 4), "e": (2, 0)}
    # Offset 0 is committed once the committed offset (the next to read) is past it; a
    # rebalance reporting an older offset (0: 2 at t=3) does not un-commit offset 2.
    assert stats.commit_times(positions, polls) == {"a": 2.0, "b": 2.0, "d": 3.0}


@settings(max_examples=200)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=30), st.integers(0, 100))
def test_a_message_is_committed_no_earlier_than_its_offset_is_passed(
    committed: list[int], offset: int
) -> None:
    polls = [(float(t), {0: c}) for t, c in enumerate(committed)]
    found = stats.commit_times({"m": (0, offset)}, polls)
    if "m" in found:
        assert max(committed[: int(found["m"]) + 1]) > offset
        assert all(c <= offset for c in committed[: int(found["m"])])
    else:
        assert max(committed) <= offset


@pytest.mark.parametrize(("value", "shown"), [
    (math.inf, "never"), (2.5e-5, "25.0 us"), (0.0421, "42.1 ms"), (3.0, "3.00 s"),
])  # fmt: skip
def test_human_seconds(value: float, shown: str) -> None:
    assert stats.human_seconds(value) == shown


@pytest.mark.parametrize(("value", "shown"), [
    (512, "512/s"), (2500, "2.5k/s"), (12_345, "12k/s"), (2_500_000, "2.50M/s"),
    (math.nan, "n/a"),
])  # fmt: skip
def test_human_rate(value: float, shown: str) -> None:
    assert stats.human_rate(value) == shown


def test_human_bytes() -> None:
    assert stats.human_bytes(1536) == "2 KiB"
    assert stats.human_bytes(1.5 * 1024**3) == "1.50 GiB"
