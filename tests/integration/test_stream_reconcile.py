"""Signals a lost run left stored are corrected, on chdb: orphans (stored active, no longer the
journey's) retracted, current signals a lost run retracted re-asserted."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.journey import Signal
from pipeline.store.embedded import EmbeddedStore
from pipeline.stream.reconcile import signal_corrections
from pipeline.stream.rows import Position

AT = Position("reconcile", 0, 0, datetime(2026, 5, 1, tzinfo=UTC))


def current(signal_id: str, journey_id: str) -> Signal:
    """The engine's signal, as `signal` stores it (a replay derives the same id and fields)."""
    return Signal(
        signal_id, journey_id, "c", "rework", "billing", "billing", -10.0,
        datetime(2026, 4, 1, tzinfo=UTC), ["e1"], "invoice corrected", "v1",
    )  # fmt: skip


def signal(signal_id: str, journey_id: str, version: int, model: str = "v1") -> dict[str, object]:
    return {
        "signal_id": signal_id, "journey_id": journey_id, "customer_id": "c", "signal": "rework",
        "department": "billing", "stage": "billing", "impact": -10.0,
        "effective_at": datetime(2026, 4, 1, tzinfo=UTC), "evidence_event_ids": ["e1"],
        "reason": "invoice corrected", "score_model": model, "model_version": model,
        "active": 1, "version": version,
    } | AT.provenance()  # fmt: skip


def test_only_signals_the_journey_no_longer_has_are_retracted(fresh_store: EmbeddedStore) -> None:
    fresh_store.insert(
        "journey_signals",
        [signal("s1", "J,1", 10), signal("s2", "J,1", 10), signal("s3", "J2", 50),
         signal("s4", "other", 10), signal("s5", "J2", 10, model="v2")],
    )  # fmt: skip
    sets = {"J,1": (20, {"s1": current("s1", "J,1")}), "J2": (30, {})}
    orphans = signal_corrections(fresh_store, sets, AT, "v1")  # s5: a rescore's, not the worker's
    assert [(r["signal_id"], r["active"], r["version"]) for r in orphans] == [("s2", 0, 20)]
    assert orphans[0]["department"] == "billing"  # the whole row, only active/version change
    fresh_store.insert("journey_signals", orphans)
    active = fresh_store.query(
        "SELECT signal_id FROM journey_signals FINAL WHERE active = 1 ORDER BY signal_id"
    )
    assert [r["signal_id"] for r in active] == ["s1", "s3", "s4", "s5"]


def test_a_current_signal_a_lost_run_retracted_is_reasserted_once_the_journey_outranks_it(
    fresh_store: EmbeddedStore,
) -> None:
    """Two crashes, two interleavings: run 3 retracted s1 at its journey's version (40); the
    final replay raises s1 again at the step it appears (version 25), which the retraction
    outranks. The journey's flushes re-assert s1 once their version is above 40."""
    fresh_store.insert(
        "journey_signals",
        [signal("s1", "J", 25), signal("s1", "J", 40) | {"active": 0}, signal("s2", "J", 40)],
    )  # fmt: skip
    sets = {"J": (35, {"s1": current("s1", "J"), "s2": current("s2", "J")})}
    assert signal_corrections(fresh_store, sets, AT, "v1") == []  # 35 < 40: a later flush
    sets = {"J": (50, {"s1": current("s1", "J"), "s2": current("s2", "J")})}
    corrections = signal_corrections(fresh_store, sets, AT, "v1")
    assert [(r["signal_id"], r["active"], r["version"]) for r in corrections] == [("s1", 1, 50)]
    fresh_store.insert("journey_signals", corrections)
    stored = fresh_store.query(
        "SELECT signal_id, active, department, evidence_event_ids FROM journey_signals FINAL "
        "ORDER BY signal_id"
    )
    assert stored == [
        {"signal_id": "s1", "active": 1, "department": "billing", "evidence_event_ids": ["e1"]},
        {"signal_id": "s2", "active": 1, "department": "billing", "evidence_event_ids": ["e1"]},
    ]
