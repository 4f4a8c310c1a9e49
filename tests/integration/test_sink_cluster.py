"""The worker's sink on the cluster layout (`journeys migrate --cluster`): re-filing the
touchpoints a late event moved to another journey. `touchpoints` is a Distributed table
there, which refuses a DELETE; the sink deletes from `touchpoints_local` ON CLUSTER.

On the one-node cluster of the ClickHouse test server (tests/support/clickhouse_cluster.py):
real Distributed tables over local tables, `ON CLUSTER` run by the node itself. What needs
several nodes (the statement reaching every shard and replica) is not shown here.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.store.server import ServerStore
from pipeline.stream.metrics import Metrics
from pipeline.stream.sink import ClickHouseSink, PartitionBatch

pytestmark = pytest.mark.integration
AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
READ = "SELECT event_id, journey_id FROM touchpoints ORDER BY event_id, journey_id"


def touchpoint(event_id: str, offset: int, journey_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id, "occurred_at": AT, "customer_id": "c-1", "journey_id": journey_id,
        "department": "billing", "stage": "billing", "channel": "email",
        "type": "invoice_issued", "attributes": "{}", "_topic": "touchpoints",
        "_partition": 0, "_offset": offset, "_ingested_at": AT,
    }  # fmt: skip


def settled(store: ServerStore, expected: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The touchpoints once the moves' deletes are applied (in the background, ~1 s)."""
    deadline = time.monotonic() + 30
    while (stored := store.query(READ)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return stored


def sink_for(store: ServerStore) -> ClickHouseSink:
    return ClickHouseSink(store, Metrics(), flush_rows=10**6, flush_seconds=1.0,
                          buffer_rows=10**6, retry_max_seconds=0.2)  # fmt: skip


def test_a_checkpoint_that_moves_touchpoints_on_a_cluster(cluster_store: ServerStore) -> None:
    """A late earlier event reveals the journey of touchpoints stored under the customer's
    id: the checkpoint stores its rows and re-files the stored ones, which then show under
    the new journey only."""
    cluster_store.insert("touchpoints", [touchpoint(f"e-{n}", n, "c-1") for n in range(3)])
    sink = sink_for(cluster_store)
    late = PartitionBatch(0, rows={"touchpoints": [touchpoint("e-0-late", 9, "order-1")]},
                          offsets={"touchpoints": (9, 9)},
                          moved={f"e-{n}": ("c-1", "order-1") for n in range(2)})  # fmt: skip
    asyncio.run(asyncio.wait_for(sink.write([late]), 60))
    assert sink.metrics.counts.get("sink_failures", 0) == 0
    expected = [{"event_id": "e-0", "journey_id": "order-1"},
                {"event_id": "e-0-late", "journey_id": "order-1"},
                {"event_id": "e-1", "journey_id": "order-1"},
                {"event_id": "e-2", "journey_id": "c-1"}]  # fmt: skip
    assert settled(cluster_store, expected) == expected
    # A later checkpoint moves another: the same sink, the layout it found the first time.
    again = PartitionBatch(0, offsets={"touchpoints": (10, 10)}, moved={"e-2": ("c-1", "order-1")})
    asyncio.run(asyncio.wait_for(sink.write([again]), 60))
    expected[3]["journey_id"] = "order-1"
    assert settled(cluster_store, expected) == expected


def test_a_backfill_moving_thousands_on_a_cluster(cluster_store: ServerStore) -> None:
    """A backfill's flush moves tens of thousands of touchpoints: on a cluster the delete
    goes through the distributed DDL queue, whose entries carry the statement with its ids,
    so it runs in parts of bounded size; every stored touchpoint is moved all the same."""
    cluster_store.insert("touchpoints", [touchpoint(f"e-{n}", n, "c-1") for n in range(5)])
    moved = {f"e-{n:06d}-{'x' * 20}": ("c-1", "order-1") for n in range(20_000)}
    moved |= {f"e-{n}": ("c-1", "order-1") for n in range(5)}  # the last ids, the last part
    sink = sink_for(cluster_store)
    asyncio.run(asyncio.wait_for(sink.write([PartitionBatch(0, moved=moved)]), 120))
    expected = [{"event_id": f"e-{n}", "journey_id": "order-1"} for n in range(5)]
    assert settled(cluster_store, expected) == expected
