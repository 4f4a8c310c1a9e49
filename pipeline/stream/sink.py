"""The ClickHouse sink: one buffer per partition, written as a whole at each checkpoint.

A write stores the partitions' buffered rows in one insert per table whose
`insert_deduplication_token` is the table plus every partition's source offset range
(topic-partition-first-last, as the ClickHouse Kafka Connect sink does): a retry of an insert
that did reach ClickHouse is dropped there, not written twice. Offsets are committed only
after the write returned (`pipeline.stream.checkpoint`), so a failed write holds the commit
back. Only transient failures (`TransientStoreError`: connection, timeout, overload) are
retried, with exponential back-off, while `full()` tells the intake to stop taking input; a
permanent one (a missing column, a type error) raises `PermanentSinkError` naming the table,
and the worker stops: retrying it would stall every partition behind it for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.store import Store, TransientStoreError, json_array_rows
from pipeline.store.partition_split import split_by_partition
from pipeline.store.topology import Topology, topology_of
from pipeline.stream.metrics import Metrics
from pipeline.stream.outbox import Record
from pipeline.stream.rows import Latest, Row, SignalSet

log = logging.getLogger("pipeline.stream.sink")


@dataclass
class PartitionBatch:
    partition: int
    rows: dict[str, list[Row]] = field(default_factory=dict)
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)  # topic -> first, last
    events: int = 0  # messages taken (touchpoints, re-keyed events, ticks)
    produced_at: list[float] = field(default_factory=list)
    signal_sets: dict[str, SignalSet] = field(default_factory=dict)
    # Messages to send once the rows are stored: dead letters, re-keyed events and alerts
    # in order, and the latest score snapshot per journey (the scores topic is compacted
    # by journey, so earlier snapshots of the same flush would be overwritten anyway).
    messages: list[Record] = field(default_factory=list)
    scores: dict[bytes, bytes] = field(default_factory=dict)
    # event_id -> (customer_id, journey_id): stored touchpoints a late event moved to
    # another journey (the last move of the batch wins).
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The last state of each journey and signal taken since the checkpoint, as engine
    # objects: built into rows, score messages and signal sets once, by `seal`.
    latest: Latest = field(default_factory=Latest)

    def seal(self) -> None:
        """Build the batch's journey and signal rows, score messages and signal sets from
        the latest states (the checkpoint's first step). Once per checkpoint, not once per
        fetch: at 5,000 events/s a fetch holds tens of events, and building a journey's
        row and score message per fetch made it nearly once per event."""
        if not self.latest:
            return
        built = self.latest.build()
        if built.journey_rows:
            self.rows.setdefault("journeys", []).extend(built.journey_rows)
        if built.signal_rows:
            self.rows.setdefault("journey_signals", []).extend(built.signal_rows)
        self.scores.update((key.encode(), body) for key, body in built.scores)
        self.signal_sets.update(built.signal_sets)
        self.latest = Latest()

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values()) + len(self.latest)

    def add(self, topic: str, first: int, last: int, count: int) -> None:
        """Messages `first`..`last` of `topic` (this partition) were taken into the batch."""
        known = self.offsets.get(topic)
        if known is not None:
            first, last = min(first, known[0]), max(last, known[1])
        self.offsets[topic] = (first, last)
        self.events += count

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """What to commit once this batch is stored: the offset after the last one taken."""
        return {(topic, self.partition): last + 1 for topic, (_, last) in self.offsets.items()}

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
        topology: Topology | None = None,
    ) -> None:
        self.store = store
        # One server or a cluster (where moves delete ON CLUSTER): asked of the store once,
        # at the first checkpoint that moves a touchpoint, unless given.
        self.topology = topology
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
        return sum(b.events for b in self._batches.values())

    def due(self) -> bool:
        """Time to start a flush: enough rows, or the oldest has waited long enough."""
        if not self._batches:
            return False
        waited = time.monotonic() - self._since
        return self.buffered_rows >= self.flush_rows or waited >= self.flush_seconds

    def full(self) -> bool:
        return self.buffered_rows >= self.buffer_rows

    def pending(self) -> list[PartitionBatch]:
        """The buffered batches, left in place."""
        return list(self._batches.values())

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
            if not table_rows:
                continue
            token = f"{table}:" + ";".join(batch.ranges() for batch in batches)
            await self._until_stored(table, len(table_rows), insert_rows, self.store, table,
                                     table_rows, token)  # fmt: skip
        moved = {event: to for batch in batches for event, to in batch.moved.items()}
        if moved:
            await self._until_stored("touchpoints", len(moved), self._move, moved)
        now = time.time()
        for batch in batches:
            for produced_at in batch.produced_at:
                self.metrics.stored(max(now - produced_at, 0.0))
        self.metrics.add("flushes")

    def _move(self, moved: dict[str, tuple[str, str]]) -> None:
        if self.topology is None:  # in the retried call: a transient failure is retried
            self.topology = topology_of(self.store)
        move_touchpoints(self.store, moved, self.topology)

    async def _until_stored(
        self, table: str, count: int, write: Callable[..., None], *args: Any
    ) -> None:
        delay, attempt = 0.1, 0
        while True:
            attempt += 1
            try:
                await asyncio.to_thread(write, *args)
            except TransientStoreError as exc:  # not stored yet; the same token makes it safe
                self.metrics.add("sink_failures")
                self.metrics.add("sink_retries")
                log.warning(
                    "sink write failed table=%s rows=%d attempt=%d retry_in=%.1fs error=%s",
                    table, count, attempt, delay, str(exc)[:300],
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_seconds)
                continue
            except Exception as exc:
                self.metrics.add("sink_failures")
                raise PermanentSinkError(table, exc) from exc
            self.metrics.add("rows_written", count)
            self.metrics.rows_by_table[table] += count
            if attempt > 1:
                log.info("sink write recovered table=%s rows=%d attempts=%d", table, count, attempt)
            return


def insert_rows(store: Store, table: str, rows: list[Row], token: str) -> None:
    """The rows of one table, in inserts within ClickHouse's partitions per insert, each
    with its deduplication token (`split_by_partition`). In the sink's thread, encoding
    included: a checkpoint's JSON took milliseconds of the event loop per thousand rows.
    A retry inserts every part again; the parts ClickHouse already holds are dropped there.
    Each part's body is one JSON array (`json_array_rows`), read as JSONEachRow."""
    for part, part_token in split_by_partition(table, rows, token):
        store.insert(table, json_array_rows(part), part_token)


class PermanentSinkError(RuntimeError):
    """ClickHouse refused rows for a reason a retry cannot fix; the worker must stop."""

    def __init__(self, table: str, error: BaseException) -> None:
        self.table = table
        super().__init__(f"ClickHouse refused rows for table {table}: {str(error)[:500]}")


_TOUCHPOINT_COLUMNS = (
    "event_id", "occurred_at", "customer_id", "journey_id", "department", "stage", "channel",
    "type", "attributes", "schema_version", "_topic", "_partition", "_offset", "_ingested_at",
)  # fmt: skip


# On a cluster a part of the moves' delete is one distributed DDL entry, which carries the
# statement with its ids bound in: every node parses it (`max_query_size`, 256 KiB by
# default) and Keeper stores it (ZooKeeper refuses a node over 1 MiB). The ids a part's
# statement names, in bytes; a backfill's flush moves tens of thousands, in several parts.
DDL_PART_BYTES = 96 * 1024


def move_touchpoints(
    store: Store, moved: dict[str, tuple[str, str]], topology: Topology | None = None
) -> None:
    """Re-file stored touchpoints under the journey a late event moved them to.

    `moved` is the engine's `Changes.moved` (`pipeline.journey.segments.moved_touchpoints`)
    of a checkpoint's batches, collected by the processor (`Output.moved`).

    `journey_id` is in the table's sorting key, so a row cannot be updated in place: each
    moved row is copied under its new journey id, then the rows under any other id are
    deleted. Both statements select by the *current* assignment, so running them again (a
    replay) copies and deletes nothing, and a row written by this flush's insert under a
    journey id the same batch superseded is moved too.

    `topology`: one server or a cluster (asked of the store when not given). On a cluster
    `touchpoints` is a Distributed table, which takes no DELETE: the delete goes to
    `touchpoints_local` ON CLUSTER (pipeline/store/topology.py), as erasure's do.
    """
    topology = topology or topology_of(store)
    params = _move_params(moved, list(moved))
    target = (
        "transform(event_id, JSONExtract({events:String}, 'Array(String)'), "
        "JSONExtract({journeys:String}, 'Array(String)'), journey_id)"
    )
    where = (
        "customer_id IN JSONExtract({customers:String}, 'Array(String)') "
        "AND event_id IN JSONExtract({events:String}, 'Array(String)')"
    )
    columns = ", ".join(_TOUCHPOINT_COLUMNS)
    chosen = ", ".join(f"{target} AS moved_to" if c == "journey_id" else c
                       for c in _TOUCHPOINT_COLUMNS)  # fmt: skip
    store.execute(
        f"INSERT INTO touchpoints ({columns}) {topology.insert_settings}"
        f"SELECT {chosen} FROM touchpoints"
        f" WHERE {where} AND journey_id != moved_to"
        # A customer's history can span more months than one insert may touch by default.
        " SETTINGS max_partitions_per_insert_block = 0",
        params,
    )
    # Asynchronous: the delete is on disk (it resumes after a crash) when the statement
    # returns, and applied in the background within about a second. Waiting for it took
    # 0.3-1 s of every checkpoint that moved a touchpoint (half of them in the benchmark
    # mix), most of the p99 latency. Until it is applied, `FINAL` reads show the moved
    # event under both ids; a later move of the same event copies from both and collapses.
    #
    # On a cluster the delete is distributed DDL: a round trip through Keeper's DDL queue
    # until every node has taken it (still not waiting for the rows to go), in each
    # checkpoint that moves a touchpoint. Acceptable: a move needs a late earlier event of
    # a customer whose events carry no journey_id, a small share of checkpoints in steady
    # operation. The parts keep each DDL entry small (DDL_PART_BYTES).
    parts = _parts(moved) if topology.clustered else [list(moved)]
    for part in parts:
        store.execute(
            f"DELETE FROM {topology.mutable('touchpoints')} WHERE {where}"
            f" AND journey_id != {target} SETTINGS lightweight_deletes_sync = 0",
            params if len(parts) == 1 else _move_params(moved, part),
        )


def _move_params(moved: dict[str, tuple[str, str]], events: list[str]) -> dict[str, str]:
    return {
        "events": orjson.dumps(events).decode(),
        "journeys": orjson.dumps([moved[e][1] for e in events]).decode(),
        "customers": orjson.dumps(sorted({moved[e][0] for e in events})).decode(),
    }


def _parts(moved: dict[str, tuple[str, str]]) -> list[list[str]]:
    """The moved events in parts whose ids (the event's twice: the condition and the
    target) add up to at most DDL_PART_BYTES, JSON quoting included."""
    parts: list[list[str]] = [[]]
    size = 0
    for event, (customer, journey) in moved.items():
        cost = sum(map(len, map(orjson.dumps, (event, event, journey, customer)))) + 4
        if parts[-1] and size + cost > DDL_PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(event)
        size += cost
    return parts
