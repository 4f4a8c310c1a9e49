"""The journey state table: journey books and partition clocks in a changelog-backed Faust table.

Faust routes a table read or write to a partition's database by the *current event*. The
worker takes whole batches without Faust events (`intake`), so `in_partition` stands a
marker in for the event while one partition's keys are read or written.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from faust.streams import _current_event, current_event
from faust.types import TP

from pipeline.stream.outbox import Outbox, Record

YIELD_EVERY = 0.005  # seconds of state writes between two turns of the event loop


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


BATCH_KEYS = 128  # keys per RocksDB write batch (a 5 ms turn holds a few batches)


def _write_batches(
    store: Any, partition: int, pending: Iterator[tuple[str, bytes]], until: float
) -> bool:
    """RocksDB (rocksdict): the keys in write batches to the partition's own database, as
    Faust's own changelog recovery writes them (`apply_changelog_batch`), instead of one
    put per key through the table, which looks the partition up from the current event
    and appends to the write-ahead log per key. Keys and values are encoded as the table
    encodes them, so the database holds the same bytes either way (a unit test compares).
    """
    from rocksdict import WriteBatch

    database = store._db_for_partition(partition)
    encode_key, encode_value = store._encode_key, store._encode_value
    while True:
        batch = WriteBatch(raw_mode=True)
        count = 0
        for key, raw in itertools.islice(pending, BATCH_KEYS):
            batch.put(encode_key(key), encode_value(raw))
            count += 1
        if count:
            database.write(batch)
        if count < BATCH_KEYS:
            return True
        if time.monotonic() >= until:
            return False


class StateTable:
    """Reads books one at a time; writes a checkpoint's books and clocks all at once."""

    def __init__(self, table: Any, source_topic: str, outbox: Outbox) -> None:
        self.table = table
        self.source_topic = source_topic
        self.outbox = outbox
        self.changelog = table.changelog_topic.get_topic_name()

    def read(self, key: str) -> bytes | None:
        """A key of the partition being processed (inside `in_partition`).

        RocksDB: straight from the partition's database, as Faust's store reads a key for
        the current event's partition, without the table's layers around it (five calls,
        and for a journey not stored yet a KeyError and `__missing__`): 4.6% of the
        worker's main thread under load. The bytes are the same (a unit test compares)."""
        data = self.table.data
        if self._direct:
            event = current_event()
            if event is not None:
                database = data._db_for_partition(event.message.partition)
                raw = database.get(data._encode_key(key))
                return bytes(data._decode_value(raw)) if raw is not None else None
        value = self.table.get(key)
        return bytes(value) if value is not None else None

    @functools.cached_property
    def _direct(self) -> bool:
        """Reads go by the current event's partition, as Faust's RocksDB store reads a
        partitioned table (not a global one, nor one placed by its own partitioner). Known
        at the first read: the table's store opens after the worker is built."""
        table = self.table
        return bool(
            getattr(table.data, "use_rocksdict", False)
            and not table.is_global
            and not table.use_partitioner
        )

    def items(self, partition: int) -> list[tuple[str, bytes]]:
        """The keys a partition's recovery looks at: those of its own database where the
        store keeps one per partition (RocksDB), else every partition's this worker holds
        (Faust's memory store keeps them together; the caller tells them apart).

        Through the table, RocksDB iterates every assigned partition's database: each
        partition's recovery at a rebalance read all the worker's books (6 KB each) to
        keep a share of them, so a rebalance cost partitions x books reads.
        """
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            database = store._db_for_partition(partition)
            pairs = [(store._decode_key(k), store._decode_value(v))
                     for k, v in store._visible_items(database)]  # fmt: skip
        else:
            pairs = list(self.table.items())
        return [(k.decode() if isinstance(k, bytes) else str(k), bytes(v)) for k, v in pairs]

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
        turn = time.monotonic() + YIELD_EVERY
        for partition, values in state.items():
            pending = iter(values.items())
            while True:
                # The partition stands in for the event once per run of its keys, not once
                # per key (a marker and a context variable set and reset per key were half
                # of persist's time on the memory store, a tenth on RocksDB), and never
                # across a turn of the loop.
                with in_partition(self.source_topic, partition):
                    written = self._write(partition, pending, turn)
                    if written:
                        offset = offsets.get((self.changelog, partition))
                        if offset is not None:
                            self.table.data.set_persisted_offset(
                                TP(self.changelog, partition), offset
                            )
                if written:
                    break
                # A second's books took milliseconds of writes: let requests (the context
                # API) through. Input taken meanwhile changes only the cached books, which
                # stay dirty, so read from the cache, until this checkpoint ends.
                await asyncio.sleep(0)
                turn = time.monotonic() + YIELD_EVERY

    def _write(self, partition: int, pending: Iterator[tuple[str, bytes]], until: float) -> bool:
        """Write `pending` keys to the local store (inside `in_partition`) until the clock
        reaches `until`; True once every key is written."""
        data = self.table.data
        if getattr(data, "use_rocksdict", False):
            return _write_batches(data, partition, pending, until)
        for key, raw in pending:
            data[key] = raw
            if time.monotonic() >= until:
                return False
        return True

    async def forget(self, keys: dict[int, list[str]]) -> None:
        """Delete these keys of each partition: a tombstone to the changelog first (the
        compacted topic then drops the values too, and a recovery deletes them), then
        from the local store. An erased customer's books leave the worker this way."""
        await self.outbox.send(
            Record(self.changelog, key.encode(), None, partition=partition)
            for partition, forgotten in keys.items()
            for key in forgotten
        )
        for partition, forgotten in keys.items():
            with in_partition(self.source_topic, partition):
                for key in forgotten:
                    self.table.data.pop(key, None)
