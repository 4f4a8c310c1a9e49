"""A flush spanning hundreds of months is stored (once), on the real engine.

ClickHouse refuses an INSERT whose rows fall into more than 100 partitions, and the tables
are partitioned by month: a backfill of 25 years in one flush used to be refused on every
retry, stalling the worker. The sink now cuts such a table's rows into inserts within the
limit, each with a token of its own, so writing the same batch again stores nothing twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.contract import Touchpoint
from pipeline.store import Store
from pipeline.stream.metrics import Metrics
from pipeline.stream.rows import Position, touchpoint_row
from pipeline.stream.sink import ClickHouseSink, PartitionBatch

pytestmark = pytest.mark.integration
MONTHS = 300
INGESTED = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def month(n: int) -> datetime:
    year, index = divmod(n, 12)
    return datetime(2001 + year, index + 1, 15, 10, 30, tzinfo=UTC)


def backfill() -> dict[str, list[dict[str, Any]]]:
    at = Position("touchpoints", 0, 0, INGESTED)
    touchpoints = [
        touchpoint_row(
            Touchpoint(event_id=f"e{n}", occurred_at=month(n), customer_id="c1",
                       department="billing", type="contact", journey_id="J1"),
            None, Position("touchpoints", 0, n, INGESTED),
        )
        for n in range(MONTHS)
    ]  # fmt: skip
    signals = [
        {"signal_id": f"s{n}", "journey_id": f"J{n}", "customer_id": "c1", "signal": "rework",
         "department": "billing", "stage": "billing", "impact": -10.0,
         "effective_at": month(n), "evidence_event_ids": [f"e{n}"], "reason": "redone",
         "score_model": "v1", "active": 1, "version": 1} | at.provenance()
        for n in range(MONTHS)
    ]  # fmt: skip
    journeys = [
        {"journey_id": f"J{n}", "customer_id": "c1", "started_at": month(n),
         "last_event_at": month(n), "updated_at": month(n), "status": "closed", "score": 90.0,
         "operational_score": 90.0, "band": "good", "touchpoint_count": 1,
         "score_model": "v1", "version": 1} | at.provenance()
        for n in range(MONTHS)
    ]  # fmt: skip
    return {"touchpoints": touchpoints, "journey_signals": signals, "journeys": journeys}


def counts(store: Store) -> dict[str, int]:
    # The views' tables have no deduplication window (0002): they collapse under FINAL.
    tables = ("touchpoints", "journey_signals", "journeys", "signals_by_department FINAL")
    return {t: store.query(f"SELECT count() AS n FROM {t}")[0]["n"] for t in tables}


@pytest.mark.timeout(120)
def test_a_backfill_of_three_hundred_months_is_stored_once(fresh_store: Store) -> None:
    sink = ClickHouseSink(
        fresh_store, Metrics(), flush_rows=10**6, flush_seconds=1.0, buffer_rows=10**6,
        retry_max_seconds=0.2,
    )  # fmt: skip
    batch = PartitionBatch(0, rows=backfill(), offsets={"touchpoints": (0, MONTHS - 1)})

    asyncio.run(asyncio.wait_for(sink.write([batch]), 60))
    stored = counts(fresh_store)
    assert stored == dict.fromkeys(stored, MONTHS)
    months = fresh_store.query("SELECT uniqExact(toYYYYMM(occurred_at)) AS n FROM touchpoints")
    assert months[0]["n"] == MONTHS

    # The same batch again (a replay after a crash between insert and commit): every
    # chunk's token is the same as before, so ClickHouse drops each one.
    asyncio.run(asyncio.wait_for(sink.write([batch]), 60))
    assert counts(fresh_store) == stored
    assert sink.metrics.counts.get("sink_retries", 0) == 0
