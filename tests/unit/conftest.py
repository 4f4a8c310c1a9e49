"""The worker's runtime without a broker or a store: `runtime_factory`.

Everything the runtime runs on between two checkpoints is real: the processor, the book
cache, the state table (a Faust table on Faust's memory store), the sink's buffers. What
needs Kafka or ClickHouse is not reached before a checkpoint, and the rig never starts one
(its flush thresholds are out of reach): the store, the producer and the offset commit fail
the test if anything touches them. The test plays the consumer: it hands the runtime
fetched records (`deliver`) and, after a rewind, reads them again from where the runtime
asked (`redeliver`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from pipeline.contract import Validator
from pipeline.journey import load_score_model
from pipeline.stream.book_cache import BookCache
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.outbox import Outbox
from pipeline.stream.processor import JourneyProcessor
from pipeline.stream.runtime import Runtime
from pipeline.stream.sink import ClickHouseSink
from pipeline.stream.state import StateTable
from pipeline.stream.topics import TopicNames
from pipeline.stream.worker import partitioner

TOPIC = "touchpoints"
ROUTED = "touchpoints.routed"
NAMES = TopicNames(routed=ROUTED, dead_letters="touchpoints.dlq", scores="scores",
                   alerts="alerts")  # fmt: skip


class Untouchable:
    """Stands where Kafka or ClickHouse would be: between checkpoints nothing reaches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} reached outside a checkpoint")


def record(topic: str, partition: int, offset: int, value: bytes | None,
           key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()) -> Any:  # fmt: skip
    return ConsumerRecord(topic, partition, offset, 1_700_000_000_000, 0, key, value, None,
                          len(key or b""), len(value or b""), list(headers))  # fmt: skip


@dataclass
class RuntimeRig:
    runtime: Runtime
    table: Any
    log: dict[tuple[str, int], list[Any]] = field(default_factory=dict)  # what was fetched
    rewinds: list[dict[tuple[str, int], int]] = field(default_factory=list)

    @property
    def metrics(self) -> Metrics:
        return self.runtime.metrics

    def deliver(self, records: Sequence[Any]) -> None:
        """One fetch of these records (any topic-partitions, each in offset order)."""
        fetched: dict[Any, list[Any]] = {}
        for r in records:
            fetched.setdefault(TP(r.topic, r.partition), []).append(r)
            self.log.setdefault((r.topic, r.partition), []).append(r)
        asyncio.run(self.runtime.handle(fetched))

    def redeliver(self) -> None:
        """After a rewind: what was fetched, again from the offsets it asked for."""
        (offsets,) = self.rewinds[-1:]
        again = [r for (topic, partition), start in offsets.items()
                 for r in self.log[(topic, partition)] if r.offset >= start]  # fmt: skip
        fetched: dict[Any, list[Any]] = {}
        for r in again:
            fetched.setdefault(TP(r.topic, r.partition), []).append(r)
        asyncio.run(self.runtime.handle(fetched))

    def buffered(self, table: str) -> list[dict[str, Any]]:
        """The rows the next checkpoint writes (journeys and signals are built at its start)."""
        batches = list(self.runtime.sink._batches.values())
        for batch in batches:
            batch.seal()
        return [row for b in batches for row in b.rows.get(table, [])]


@pytest.fixture
def runtime_factory() -> Callable[..., RuntimeRig]:
    def make(partitions: int = 1, attempts: int = 2, validator: Validator | None = None,
             table_data: dict[str, bytes] | None = None) -> RuntimeRig:  # fmt: skip
        app = faust.App(f"unit-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1",
                        store="memory://", topic_partitions=partitions)  # fmt: skip
        table = app.Table("journey_books", partitions=partitions, key_type=bytes,
                          value_type=bytes)  # fmt: skip
        state = StateTable(table, TOPIC, Outbox(Untouchable))
        books = BookCache(state.read)
        metrics = Metrics()
        processor = JourneyProcessor(
            load_score_model(), validator or Validator(max_bytes=2 << 20), books,
            partitioner(partitions), touchpoints_topic=TOPIC, alert_horizon_s=24 * 3600,
            dedup=RecentEventIds(int(timedelta(days=2).total_seconds() * 1e6), 100_000),
            metrics=metrics,
        )  # fmt: skip
        sink = ClickHouseSink(Untouchable(), metrics, flush_rows=10**9, flush_seconds=1e9,  # type: ignore[arg-type]
                              buffer_rows=10**9, retry_max_seconds=1)  # fmt: skip
        rig: RuntimeRig

        async def rewind(offsets: dict[tuple[str, int], int]) -> None:
            rig.rewinds.append(dict(offsets))

        def stop(code: int) -> None:
            raise AssertionError(f"the worker asked to stop with exit {code}")

        runtime = Runtime(
            processor=processor, books=books, sink=sink, state=state, outbox=Outbox(Untouchable),
            names=NAMES, touchpoints_topic=TOPIC, commit_offsets=Untouchable(), stop=stop,
            rewind=rewind, attempts=attempts,
        )  # fmt: skip
        rig = RuntimeRig(runtime, table)
        for key, value in (table_data or {}).items():  # a table an older version wrote
            table.data[key] = value
        return rig

    return make
