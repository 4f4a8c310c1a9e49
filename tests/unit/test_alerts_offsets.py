"""Offsets of alerts that finish out of order: a commit never passes one still in flight."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.alerts.offsets import OffsetTracker

TP = ("journeys.alerts", 0)


@given(order=st.permutations(list(range(20))), stop=st.integers(0, 20))
def test_the_commit_is_the_lowest_offset_not_done(order: list[int], stop: int) -> None:
    tracker = OffsetTracker()
    for offset in range(100, 120):
        tracker.taken(TP, offset)
    finished = order[:stop]
    for index in finished:
        tracker.done(TP, 100 + index)
    expected = min((100 + i for i in range(20) if i not in finished), default=120)
    committed = tracker.committable().get(TP, 100)
    assert committed == expected
    assert tracker.in_flight == 20 - stop


def test_only_moved_offsets_are_committed_and_forgotten_partitions_are_not() -> None:
    tracker = OffsetTracker()
    tracker.taken(TP, 5)
    assert tracker.committable() == {TP: 5}
    assert tracker.committable() == {}
    tracker.done(TP, 5)
    assert tracker.committable() == {TP: 6}
    tracker.taken(TP, 6)
    tracker.forget({TP})
    tracker.done(TP, 6)  # finished after the partition moved: the new owner commits it
    assert tracker.committable() == {} and tracker.in_flight == 0
