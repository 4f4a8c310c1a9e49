"""The worker's runtime without a broker or a store, as `runtime_factory` (tests/unit) builds it.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.types import TP

from pipeline.stream.metrics import Metrics
from pipeline.stream.runtime import Runtime
from pipeline.stream.topics import TopicNames

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


def fetch(records: Sequence[Any]) -> dict[Any, list[Any]]:
    """The records as one fetch hands them to `Runtime.handle`: by topic-partition."""
    fetched: dict[Any, list[Any]] = {}
    for r in records:
        fetched.setdefault(TP(r.topic, r.partition), []).append(r)
    return fetched


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
        for r in records:
            self.log.setdefault((r.topic, r.partition), []).append(r)
        asyncio.run(self.runtime.handle(fetch(records)))

    def redeliver(self) -> None:
        """After a rewind: what was fetched, again from the offsets it asked for."""
        (offsets,) = self.rewinds[-1:]
        again = [r for (topic, partition), start in offsets.items()
                 for r in self.log[(topic, partition)] if r.offset >= start]  # fmt: skip
        asyncio.run(self.runtime.handle(fetch(again)))

    def buffered(self, table: str) -> list[dict[str, Any]]:
        """The rows the next checkpoint writes (it catches up the books the intake left,
        and builds journeys and signals, at its start)."""
        self.runtime._settle(strict=False)
        batches = list(self.runtime.sink._batches.values())
        for batch in batches:
            batch.seal()
        return [row for b in batches for row in b.rows.get(table, [])]
