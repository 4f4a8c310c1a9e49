"""The stream's small parts: wake-ups, de-dup memory, batch tokens, versions, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.journey import JourneyScore
from pipeline.stream.clock import PartitionClocks, Wakeups
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.rows import journey_version, superseding_version
from pipeline.stream.sink import DDL_PART_BYTES, PartitionBatch, _parts

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_partition_clocks_only_move_forward() -> None:
    clocks = PartitionClocks()
    clocks.observe(0, 100)
    clocks.observe(0, 50)
    clocks.observe(1, 10)
    assert (clocks.now(0), clocks.now(1)) == (100, 10)


def test_wakeups_fire_strictly_after_their_moment_once_and_only_for_the_latest_schedule() -> None:
    wakeups = Wakeups()
    wakeups.schedule(0, "a", 10)
    wakeups.schedule(0, "a", 30)  # re-scheduled: the 10 entry is stale
    wakeups.schedule(0, "b", 20)
    wakeups.schedule(1, "c", 5)
    assert wakeups.due(0, 20) == []
    assert wakeups.due(0, 21) == ["b"]
    assert wakeups.due(0, 100) == ["a"]
    assert wakeups.due(0, 100) == []
    wakeups.schedule(1, "c", None)
    assert wakeups.due(1, 100) == []


def test_recent_event_ids_remember_within_the_window_and_the_bound() -> None:
    ids = RecentEventIds(window_us=100, max_ids=3)
    assert not ids.seen(0, "e1", at_us=0, clock_us=0)
    assert ids.seen(0, "e1", at_us=0, clock_us=50)
    assert not ids.seen(1, "e1", at_us=0, clock_us=50)  # per partition
    assert not ids.seen(0, "e2", at_us=200, clock_us=200)  # e1 now out of the window
    assert not ids.seen(0, "e1", at_us=0, clock_us=200)
    for n in range(10):
        ids.seen(0, f"x{n}", at_us=200, clock_us=200)
    assert len(ids) == 3


def test_a_batch_names_each_source_range_for_the_dedup_token() -> None:
    batch = PartitionBatch(2)
    batch.add("touchpoints", 7, 9, 3)
    batch.add("touchpoints", 3, 5, 3)
    batch.add("touchpoints.routed", 1, 1, 1)
    assert batch.ranges() == "touchpoints-2-3-9,touchpoints.routed-2-1-1"
    assert batch.events == 7
    # What a checkpoint commits: the offset after the last message taken, per topic.
    assert batch.next_offsets() == {("touchpoints", 2): 10, ("touchpoints.routed", 2): 2}


def score(updated_at: datetime, count: int) -> JourneyScore:
    return JourneyScore(
        journey_id="J", customer_id="c", started_at=T0, last_event_at=T0, status="open",
        score=100.0, operational_score=100.0, survey_score=None, band="good",
        touchpoint_count=count, lost_points=0.0, gained_points=0.0,
        lost_points_beyond_front_desk=0.0, worst_department="", worst_stage="",
        score_model="v1", signals=[], updated_at=updated_at,
    )  # fmt: skip


@settings(max_examples=50)
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 4000), st.integers(1, 4000))
def test_journey_versions_order_by_size_then_clock(
    a_s: int, b_s: int, a_count: int, b_count: int
) -> None:
    a = score(T0 + timedelta(seconds=a_s), a_count)
    b = score(T0 + timedelta(seconds=b_s), b_count)
    if (a_count, a_s) < (b_count, b_s):
        assert journey_version(a) < journey_version(b)
    assert journey_version(a) < 2**64  # UInt64
    clock_us = int((T0 + timedelta(seconds=max(a_s, b_s))).timestamp() * 1_000_000)
    assert superseding_version(clock_us) > max(journey_version(a), journey_version(b))


def test_metrics_keep_accounting_and_speak_prometheus() -> None:
    metrics = Metrics()
    metrics.add("received", 3)
    metrics.add("accepted", 2)
    metrics.reject("invalid_json")
    metrics.stored(0.2, events=99)
    metrics.stored(4.0)
    data = metrics.as_dict()
    assert data["received"] == data["accepted"] + data["rejected"]
    assert data["rejected_by_code"] == {"invalid_json": 1}
    assert data["event_to_stored_p99_seconds"] == 0.25
    text = metrics.prometheus()
    assert 'journeys_rejected_by_code_total{code="invalid_json"} 1' in text
    assert 'journeys_event_to_stored_seconds_bucket{le="+Inf"} 100' in text
    assert "# TYPE journeys_received_total counter" in text


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=3000),
        st.tuples(st.text(max_size=40), st.text(max_size=40)),
        max_size=200,
    )
)
@settings(max_examples=50)
def test_a_clusters_moves_are_deleted_in_parts_of_bounded_size(
    moved: dict[str, tuple[str, str]],
) -> None:
    """Every moved event once, in order; a part's ids (JSON-quoted, the event twice) stay
    within the bound unless one event alone exceeds it."""
    parts = _parts(moved)
    assert [e for part in parts for e in part] == list(moved)
    for part in parts:
        size = sum(2 * len(orjson.dumps(e)) + len(orjson.dumps(moved[e][1]))
                   + len(orjson.dumps(moved[e][0])) for e in part)  # fmt: skip
        assert size <= DDL_PART_BYTES or len(part) == 1


def test_a_backfills_moves_take_several_parts() -> None:
    # As tests/integration/test_sink_cluster.py's backfill: several DDL entries, not one.
    big = {f"e-{n:06d}-{'x' * 20}": ("c-1", "order-1") for n in range(20_000)}
    assert len(_parts(big)) > 10
