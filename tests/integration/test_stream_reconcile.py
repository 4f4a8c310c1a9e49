"""Orphaned signals (stored active, no longer the journey's) are found and retracted, on chdb."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.store.embedded import EmbeddedStore
from pipeline.stream.reconcile import orphaned_signals
from pipeline.stream.rows import Position

AT = Position("reconcile", 0, 0, datetime(2026, 5, 1, tzinfo=UTC))


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
    sets = {"J,1": (20, frozenset({"s1"})), "J2": (30, frozenset())}
    orphans = orphaned_signals(fresh_store, sets, AT, "v1")  # s5: a rescore's, not the worker's
    assert [(r["signal_id"], r["active"], r["version"]) for r in orphans] == [("s2", 0, 20)]
    assert orphans[0]["department"] == "billing"  # the whole row, only active/version change
    fresh_store.insert("journey_signals", orphans)
    active = fresh_store.query(
        "SELECT signal_id FROM journey_signals FINAL WHERE active = 1 ORDER BY signal_id"
    )
    assert [r["signal_id"] for r in active] == ["s1", "s3", "s4", "s5"]
