"""The naive baseline: a Faust agent that handles one event at a time.

Per event: decode with the standard library, one Table write (a changelog message), one
ClickHouse insert of one row. This is what the first version of any stream job looks like,
and what the real worker must beat by 4x (issue 8). It stores the same `touchpoints` rows
(same table, same provenance columns) so its event-to-stored latency is measured the same way.

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

app, touchpoints, WORKDIR = baseline_app("naive")
journey_counts = app.Table("naive_journey_counts", default=int, partitions=PARTITIONS)
_store: Any = None


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


@app.agent(touchpoints)
async def naive(stream: Any) -> None:
    async for message in stream.events():
        event = json.loads(message.value)
        key = event.get("journey_id") or event.get("customer_id") or event.get("event_id")
        journey_counts[key] += 1
        tp = message.message
        # One insert per event: what the pipeline's batching sink exists to avoid.
        if INSERT:
            store().insert("touchpoints", [row(event, tp.partition, tp.offset)])
