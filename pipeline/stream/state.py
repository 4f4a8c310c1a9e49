"""The journey state table: journey books and partition clocks in a changelog-backed Faust table.

Faust routes a table read or write to a partition's database by the *current event*. The
worker takes whole batches without Faust events (`intake`), so `in_partition` stands a
marker in for the event while one partition's keys are read or written.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from faust.streams import _current_event
from faust.types import TP

from pipeline.stream.outbox import Outbox, Record


@dataclass(frozen=True)
class _Message:
    topic: str
    partition: int


class _PartitionMarker:
    """What Faust's stores read from the current event: `message.partition` (and topic)."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


@contextmanager
def in_partition(topic: str, partition: int) -> Iterator[None]:
    """Table reads and writes inside go to `partition`'s state."""
    marker = _PartitionMarker(topic, partition)
    token = _current_event.set(weakref.ref(marker))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


class StateTable:
    """Reads books one at a time; writes a checkpoint's books and clocks all at once."""

    def __init__(self, table: Any, source_topic: str, outbox: Outbox) -> None:
        self.table = table
        self.source_topic = source_topic
        self.outbox = outbox
        self.changelog = table.changelog_topic.get_topic_name()

    def read(self, key: str) -> bytes | None:
        """A key of the partition being processed (inside `in_partition`)."""
        value = self.table.get(key)
        return bytes(value) if value is not None else None

    def items(self) -> list[tuple[str, bytes]]:
        """Every key of the partitions this worker holds (recovery, at a partition's start)."""
        return [
            (k.decode() if isinstance(k, bytes) else str(k), bytes(v))
            for k, v in list(self.table.items())
        ]

    async def persist(self, state: dict[int, dict[str, bytes]]) -> None:
        """Write each partition's values: to the changelog first (awaited, acks=all), then
        to the local store with the changelog offset it now holds, which is what Faust's own
        table writes do, minus one send per key. A crash in between is harmless: the local
        store is rebuilt from the changelog from its persisted offset on."""
        offsets = await self.outbox.send(
            Record(self.changelog, key.encode(), raw, partition=partition)
            for partition, values in state.items()
            for key, raw in values.items()
        )
        for partition, values in state.items():
            with in_partition(self.source_topic, partition):
                for key, raw in values.items():
                    self.table.data[key] = raw
                offset = offsets.get((self.changelog, partition))
                if offset is not None:
                    self.table.data.set_persisted_offset(TP(self.changelog, partition), offset)
