"""The worker drops erased customers' events as it reads them, and forgets their ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from pipeline.contract import Touchpoint, Validator, encode_touchpoint
from pipeline.journey import load_score_model
from pipeline.store.erasure import ErasureLedger, customer_hash
from pipeline.stream.book_cache import BookCache
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor
from pipeline.stream.worker import partitioner

SALT = "s" * 16
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def processor(ledger: ErasureLedger) -> JourneyProcessor:
    return JourneyProcessor(
        load_score_model(), Validator(), BookCache({}.get), partitioner(1),
        touchpoints_topic="touchpoints", alert_horizon_s=0,
        dedup=RecentEventIds(3600 * 24 * 1_000_000, 10_000), metrics=Metrics(), ledger=ledger,
    )  # fmt: skip


def event(event_id: str, customer: str) -> bytes:
    return encode_touchpoint(Touchpoint(
        event_id=event_id, occurred_at=T0 + timedelta(minutes=len(event_id)),
        customer_id=customer, department="customer_service", type="contact",
    ))  # fmt: skip


def test_an_erased_customers_events_and_rejected_payloads_leave_no_row() -> None:
    ledger = ErasureLedger(SALT)  # empty at start: the processor must keep this very object
    p = processor(ledger)
    ledger.add([customer_hash(SALT, "gone")])
    broken = orjson.dumps({"event_id": "x", "customer_id": "gone", "type": "??"})
    values = [event("e1", "gone"), event("e2", "kept"), broken]
    out = p.process(0, [Inbound("touchpoints", 0, i, v) for i, v in enumerate(values)], NOW)
    assert [r["customer_id"] for r in out.rows["touchpoints"]] == ["kept"]
    assert not out.dead_letters and "dead_letters" not in out.rows
    counts = p.metrics.counts
    assert counts["erased_dropped"] == 2
    assert counts["received"] == counts["accepted"] + counts["rejected"] == 3


def test_forgotten_event_ids_leave_the_dedup_memory() -> None:
    ids = RecentEventIds(10**12, 100)
    assert not ids.seen(0, "e1", 1, 1) and not ids.seen(0, "e2", 2, 2)
    ids.forget({"e1"})
    assert not ids.seen(0, "e1", 3, 3)  # new again: no trace of it was kept
    assert ids.seen(0, "e2", 4, 4)
