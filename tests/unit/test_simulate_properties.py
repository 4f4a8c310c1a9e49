"""Invariants of any simulation: what the contract's validator makes of it, and the counts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import Rejection, validate
from pipeline.simulate import FAILURE_KINDS, SimulationConfig, simulate

shares = st.floats(min_value=0.0, max_value=0.3)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(1, 25),
    days=st.integers(1, 40),
    late=shares,
    out_of_order=shares,
    duplicate=shares,
    malformed=shares,
    planted=st.dictionaries(st.sampled_from(sorted(FAILURE_KINDS)), st.floats(0, 1), max_size=3),
)
def test_every_message_is_accounted_for_and_only_planted_ones_are_rejected(
    seed: int,
    customers: int,
    days: int,
    late: float,
    out_of_order: float,
    duplicate: float,
    malformed: float,
    planted: dict[str, float],
) -> None:
    config = SimulationConfig(
        customers=customers,
        days=days,
        seed=seed,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        breakdowns=planted,
        late_share=late,
        out_of_order_share=out_of_order,
        duplicate_share=duplicate,
        malformed_share=malformed,
    )
    deliveries, summary = simulate(config)
    faults = summary.faults
    assert summary.messages == len(deliveries)
    assert summary.messages == summary.events + faults.duplicates + faults.malformed

    now = config.end + timedelta(hours=1)
    results = [validate(d.value, now=now) for d in deliveries]
    rejected = [r for r in results if isinstance(r, Rejection)]
    assert len(rejected) == faults.malformed
    assert Counter(r.department for r in rejected) == faults.malformed_by_department
    accepted = {r.event_id for r in results if not isinstance(r, Rejection)}
    assert len(accepted) == summary.events
    assert [d.sent_at for d in deliveries] == sorted(d.sent_at for d in deliveries)
