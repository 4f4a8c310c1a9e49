"""The ClickHouse sink: one buffer per partition, flushed as a whole, retried until stored.

A flush writes the partitions' buffered rows in one insert per table whose
`insert_deduplication_token` is the table plus every partition's source offset range
(topic-partition-first-last, as the ClickHouse Kafka Connect sink does): a retry of an insert
that did reach ClickHouse is dropped there, not written twice. The caller acks the
partition's messages (so Faust may commit their offsets) only after `flush` returned, so a
failed write holds the commit back. Failures are retried with exponential back-off forever:
data is never dropped; meanwhile `full()` tells the agent to stop taking more input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.store import Store, json_each_row
from pipeline.stream.metrics import Metrics
from pipeline.stream.outbox import Record
from pipeline.stream.rows import Row

log = logging.getLogger("pipeline.stream.sink")


@dataclass
class PartitionBatch:
    partition: int
    rows: dict[str, list[Row]] = field(default_factory=dict)
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)  # topic -> first, last
    events: list[Any] = field(default_factory=list)  # Faust events to ack once stored
    produced_at: list[float] = field(default_factory=list)
    signal_sets: dict[str, tuple[int, frozenset[str]]] = field(default_factory=dict)
    # Messages to send once the rows are stored: dead letters, re-keyed events and alerts
    # in order, and the latest score snapshot per journey (the scores topic is compacted
    # by journey, so earlier snapshots of the same flush would be overwritten anyway).
    messages: list[Record] = field(default_factory=list)
    scores: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def add(self, topic: str, offset: int, event: Any) -> None:
        first, last = self.offsets.get(topic, (offset, offset))
        self.offsets[topic] = (min(first, offset), max(last, offset))
        self.events.append(event)

    def ranges(self) -> str:
        """The source offsets this batch covers: topic-partition-first-last, per topic."""
        return ",".join(
            f"{topic}-{self.partition}-{first}-{last}"
            for topic, (first, last) in sorted(self.offsets.items())
        )


class ClickHouseSink:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        flush_rows: int,
        flush_seconds: float,
        buffer_rows: int,
        retry_max_seconds: float,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.buffer_rows = buffer_rows
        self.retry_max_seconds = retry_max_seconds
        self._batches: dict[int, PartitionBatch] = {}
        self._since = time.monotonic()

    def batch(self, partition: int) -> PartitionBatch:
        if not self._batches:
            self._since = time.monotonic()
        return self._batches.setdefault(partition, PartitionBatch(partition))

    @property
    def buffered_rows(self) -> int:
        return sum(b.row_count for b in self._batches.values())

    @property
    def buffered_events(self) -> int:
        return sum(len(b.events) for b in self._batches.values())

    def due(self) -> bool:
        """Time to start a flush: enough rows, or the oldest has waited long enough."""
        if not self._batches:
            return False
        waited = time.monotonic() - self._since
        return self.buffered_rows >= self.flush_rows or waited >= self.flush_seconds

    def full(self) -> bool:
        return self.buffered_rows >= self.buffer_rows

    def take(self) -> list[PartitionBatch]:
        """Hand the buffered batches to a flush; new input starts new batches."""
        batches = list(self._batches.values())
        self._batches = {}
        return batches

    async def write(self, batches: list[PartitionBatch]) -> None:
        """Store the batches' rows, one insert per table, retrying until acknowledged.

        One insert per table (not per partition) keeps inserts few and large: every insert
        also feeds the dashboards' materialized views. The token names each partition's
        source range, so it is as deterministic as a per-partition one.
        """
        tables = sorted({table for batch in batches for table in batch.rows})
        for table in tables:
            table_rows = [row for batch in batches for row in batch.rows.get(table, [])]
            token = f"{table}:" + ";".join(batch.ranges() for batch in batches)
            body = json_each_row(table_rows)
            await self._insert_until_stored(table, body, token, len(table_rows))
        now = time.time()
        for batch in batches:
            for produced_at in batch.produced_at:
                self.metrics.stored(max(now - produced_at, 0.0))
        self.metrics.add("flushes")

    async def _insert_until_stored(self, table: str, body: bytes, token: str, count: int) -> None:
        delay, attempt = 0.1, 0
        while True:
            attempt += 1
            try:
                await asyncio.to_thread(self.store.insert, table, body, token)
            except Exception as exc:  # any failure: the rows are not stored yet
                self.metrics.add("sink_failures")
                self.metrics.add("sink_retries")
                log.warning(
                    "sink write failed table=%s rows=%d attempt=%d retry_in=%.1fs error=%s",
                    table, count, attempt, delay, str(exc)[:300],
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_seconds)
                continue
            self.metrics.add("rows_written", count)
            self.metrics.rows_by_table[table] += count
            if attempt > 1:
                log.info("sink write recovered table=%s rows=%d attempts=%d", table, count, attempt)
            return


Flushed = Callable[[PartitionBatch], Awaitable[None]]
