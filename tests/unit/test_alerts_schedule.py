"""The retry schedule: which answers are retried, and how long each wait is."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pipeline.alerts.schedule import RetrySchedule, Verdict, retry_after_seconds, verdict


def test_verdicts() -> None:
    assert [verdict(s) for s in (200, 202, 204)] == [Verdict.DELIVERED] * 3
    assert [verdict(s) for s in (408, 425, 429, 500, 502, 503)] == [Verdict.RETRY] * 6
    assert [verdict(s) for s in (301, 400, 401, 403, 404, 410, 422)] == [Verdict.REFUSED] * 7


@given(
    attempts=st.integers(1, 30),
    base=st.floats(0.01, 100),
    cap=st.floats(0.01, 3600),
    seed=st.integers(0, 1000),
)
def test_waits_double_within_half_to_whole_step_and_stay_under_the_cap(
    attempts: int, base: float, cap: float, seed: int
) -> None:
    schedule = RetrySchedule(attempts, base, cap)
    rng = random.Random(seed)
    steps = [schedule.step(n) for n in range(1, attempts + 1)]
    assert steps == sorted(steps) and max(steps) <= cap
    for n, step in enumerate(steps, start=1):
        assert step == min(cap, base * 2 ** (n - 1))
        assert step / 2 <= schedule.wait(n, rng=rng) <= step
    assert schedule.last(attempts) and not schedule.last(attempts - 1)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    schedule = RetrySchedule(5, base=1, cap=60)
    assert schedule.wait(1, retry_after=30) == 30
    assert schedule.wait(1, retry_after=3600) == 60
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert retry_after_seconds("-1") is None and retry_after_seconds(None) is None
