"""The naive baseline: what a competent Faust user writes in thirty lines.

Per event: decode with the standard library (a message that is not JSON is counted and
skipped), one Table write (a changelog message); rows go to ClickHouse in batches of
`BATCH` or once a second. It stores the same `touchpoints` rows (same table, same
provenance columns) so its event-to-stored latency is measured the same way.

An earlier version let a malformed message crash the agent: Faust restarted it after a
back-off, every time, which made this baseline look forty times slower than it is.

Run as `faust -A benchmarks.naive_worker worker`; configured by BENCH_* variables because
Faust imports the module before any argument could reach it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from benchmarks.baseline_app import PARTITIONS, TOPIC, baseline_app
from pipeline.store import apply_migrations
from pipeline.store.embedded import open_embedded

# 0: leave the insert out, to show what Faust's per-event path alone costs (the table write).
INSERT = os.environ.get("BENCH_NAIVE_INSERT", "1") == "1"
BATCH = 1000

app, touchpoints, WORKDIR = baseline_app("naive")
journey_counts = app.Table("naive_journey_counts", default=int, partitions=PARTITIONS)
_store: Any = None
_pending: list[dict[str, Any]] = []
skipped = 0


def store() -> Any:
    global _store
    if _store is None:
        _store = open_embedded(WORKDIR / "clickhouse", "journeys")
        apply_migrations(_store)
    return _store


def row(event: dict[str, Any], partition: int, offset: int) -> dict[str, Any]:
    journey = event.get("journey_id") or event.get("customer_id", "")
    return {
        "event_id": event.get("event_id", ""),
        "occurred_at": event.get("occurred_at"),
        "customer_id": event.get("customer_id", ""),
        "journey_id": journey,
        "department": event.get("department", ""),
        "stage": event.get("stage") or "",
        "channel": event.get("channel") or "",
        "type": event.get("type", ""),
        "attributes": json.dumps(event.get("attributes", {})),
        "_topic": TOPIC,
        "_partition": partition,
        "_offset": offset,
        "_ingested_at": datetime.now(UTC),
    }


def flush() -> None:
    if INSERT and _pending:
        store().insert("touchpoints", _pending)
    _pending.clear()


@app.agent(touchpoints)
async def naive(stream: Any) -> None:
    global skipped
    async for message in stream.events():
        try:
            event = json.loads(message.value)
            key = event.get("journey_id") or event.get("customer_id") or event["event_id"]
        except (ValueError, TypeError, KeyError, AttributeError):
            skipped += 1
            continue
        journey_counts[str(key)] += 1
        tp = message.message
        _pending.append(row(event, tp.partition, tp.offset))
        if len(_pending) >= BATCH:
            flush()


@app.timer(1.0)
async def flush_every_second() -> None:
    flush()
