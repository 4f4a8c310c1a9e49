"""What a flush sends to Kafka: one producer batch per topic-partition, awaited as a whole.

Faust's per-message send path (a future, a buffer entry and a send call per message) cost
the worker more than scoring did. A flush instead builds its score snapshots, alerts, dead
letters, re-keyed events and state-table changelog records into aiokafka `BatchBuilder`s,
one per topic-partition, submits them together and waits until the broker acknowledged
all of them (acks=all, idempotent producer) before the flush acks its input. The worker's
outbox does all of it on the loop of its producer's own thread (`producer_thread`).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import murmur2

Sent = dict[tuple[str, int], int]  # (topic, partition) -> the last offset written


@dataclass(frozen=True, slots=True)
class Record:
    """One message to send. `partition` None: by key (Kafka's murmur2), or any if no key."""

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone (a forgotten key of a compacted changelog)
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@functools.lru_cache(maxsize=65_536)
def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner, as the Java client and Faust place keyed messages.

    Cached: the same journeys' score snapshots go out at every checkpoint, and murmur2 in
    Python was 2% of the worker's main thread at 5,000 events/s."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Outbox:
    """Sends records through an aiokafka producer in whole batches.

    `producer` returns the started `AIOKafkaProducer`; `run` runs a send on the producer's
    event loop (the worker's: `ProducerThread.run`; default: the caller's loop).
    """

    def __init__(
        self,
        producer: Callable[[], Any],
        run: Callable[[Coroutine[Any, Any, Sent]], Awaitable[Sent]] | None = None,
    ) -> None:
        self._producer = producer
        self._run = run
        self._round_robin = itertools.count()

    @property
    def producer(self) -> Any:
        return self._producer()

    async def send(self, records: Iterable[Record]) -> Sent:
        """Send every record; return the last offset written per (topic, partition).

        Raises what the producer raises once its own retries are exhausted: the caller must
        not ack the input these records were derived from.
        """
        taken = list(records)  # here: the records may be built from the caller's state
        if self._run is None:
            return await self._send(taken)
        return await self._run(self._send(taken))

    async def _send(self, records: list[Record]) -> Sent:
        grouped: dict[tuple[str, int], list[Record]] = {}
        sizes: dict[str, int] = {}
        for record in records:
            if record.topic not in sizes:
                sizes[record.topic] = await self._partitions(record.topic)
            partition = record.partition
            if partition is None:
                partition = (
                    partition_of(record.key, sizes[record.topic])
                    if record.key is not None
                    else next(self._round_robin) % sizes[record.topic]
                )
            grouped.setdefault((record.topic, partition), []).append(record)
        pending = [
            asyncio.ensure_future(self._send_partition(topic, partition, group))
            for (topic, partition), group in grouped.items()
        ]
        if not pending:
            return {}
        results = await asyncio.gather(*pending)
        return dict(zip(grouped, results, strict=True))

    async def _partitions(self, topic: str) -> int:
        await self.producer.client._wait_on_metadata(topic)
        found = self.producer.client.cluster.partitions_for_topic(topic)
        if not found:
            raise RuntimeError(f"topic {topic} has no partitions in the broker's metadata")
        return len(found)

    async def _send_partition(self, topic: str, partition: int, records: list[Record]) -> int:
        """One topic-partition's records, as few batches as their size allows, in order."""
        deliveries: list[tuple[Any, int]] = []
        batch, count = self.producer.create_batch(), 0
        for record in records:
            if not _append(batch, record):
                deliveries.append((await self._submit(batch, topic, partition), count))
                batch, count = self.producer.create_batch(), 0
                if not _append(batch, record):
                    raise ValueError(f"a message for {topic} is larger than a producer batch")
            count += 1
        deliveries.append((await self._submit(batch, topic, partition), count))
        last = -1
        for delivery, sent in deliveries:
            metadata = await delivery
            last = metadata.offset + sent - 1
        return last

    async def _submit(self, batch: Any, topic: str, partition: int) -> Any:
        batch.close()
        return await self.producer.send_batch(batch, topic, partition=partition)


def _append(batch: Any, record: Record) -> bool:
    """Add the record to the batch; False when the batch is full."""
    added = batch.append(
        key=record.key, value=record.value, timestamp=None, headers=list(record.headers)
    )
    return added is not None
