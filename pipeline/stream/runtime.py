"""What the Faust agent delegates to: batches in, journey state and the sink kept in step.

Order of effects per flush, which is the whole effectively-once argument (docs/operations.md):
rows reach ClickHouse, then the books that produced them reach the state table, then the
messages are acked (so Faust may commit their offsets). A crash before the last step only
replays input whose results are either stored already (dropped as duplicates by the books
and by `ReplacingMergeTree`) or recomputed identically.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from faust.streams import _current_event
from faust.types import TP

from pipeline.stream.books import CLOCK_PREFIX, BookCache, clock_key
from pipeline.stream.outbox import Outbox, Record
from pipeline.stream.processor import Inbound, JourneyProcessor, Output
from pipeline.stream.reconcile import orphaned_signals
from pipeline.stream.rows import Position
from pipeline.stream.sink import ClickHouseSink, PartitionBatch
from pipeline.stream.topics import TICK_KEY, TopicNames, Topics

log = logging.getLogger("pipeline.stream")


@contextmanager
def in_partition(event: Any) -> Iterator[None]:
    """Make `event` Faust's current event: table reads and writes go to its partition."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class Runtime:
    def __init__(self, table: Any, topics: Topics, touchpoints_topic: str) -> None:
        self.table = table
        self.topics = topics
        self.touchpoints_topic = touchpoints_topic
        self.processor: JourneyProcessor | None = None
        self.sink: ClickHouseSink | None = None
        self.books: BookCache | None = None
        self.outbox: Outbox | None = None
        self.names = TopicNames.of(topics)
        self.stream: Any = None
        self._flush: asyncio.Task[None] | None = None
        self._known: set[int] = set()
        self.last_activity: dict[int, float] = {}
        self.next_offset: dict[int, int] = {}

    def read_book(self, key: str) -> bytes | None:
        value = self.table.get(key)
        return bytes(value) if value is not None else None

    # --- batches --------------------------------------------------------------------
    async def handle(self, events: list[Any]) -> None:
        assert self.processor is not None and self.sink is not None
        now = datetime.now(UTC)
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        for partition, partition_events in sorted(by_partition.items()):
            with in_partition(partition_events[-1]):
                self._recover(partition)
                inbound = [self._inbound(event) for event in partition_events]
                output = self.processor.process(partition, inbound, now)
            self._buffer(partition, partition_events, output)
            self._publish(partition, output)
        self.processor.metrics.buffered_rows = self.sink.buffered_rows
        if self.sink.due():
            self.start_flush()
        while self.sink.full():  # backpressure: stop taking input until rows are stored
            self.start_flush()
            assert self._flush is not None
            await asyncio.shield(self._flush)

    def _inbound(self, event: Any) -> Inbound:
        message = event.message
        if message.topic != self.touchpoints_topic:
            if message.key == TICK_KEY:
                return Inbound(message.topic, message.partition, message.offset, b"",
                               tick_us=int(message.value))  # fmt: skip
        else:
            self.last_activity[message.partition] = time.monotonic()
            self.next_offset[message.partition] = message.offset + 1
        return Inbound(
            message.topic, message.partition, message.offset, bytes(message.value),
            produced_at=message.timestamp or 0.0,
        )  # fmt: skip

    def _buffer(self, partition: int, events: list[Any], output: Output) -> None:
        assert self.sink is not None
        batch = self.sink.batch(partition)
        for event in events:
            batch.add(event.message.topic, event.message.offset, event)
        for table, rows in output.rows.items():
            batch.rows.setdefault(table, []).extend(rows)
        batch.produced_at.extend(output.produced_at)
        batch.signal_sets.update(output.signal_sets)

    def _publish(self, partition: int, output: Output) -> None:
        """Queue the batch's messages; the flush sends them once its rows are stored."""
        assert self.sink is not None
        batch = self.sink.batch(partition)
        names = self.names
        for raw, at, rejection in output.dead_letters:
            headers = (
                ("reason_code", rejection.code.encode()),
                ("reason", rejection.message.encode()),
                ("field", rejection.field.encode()),
                ("department", rejection.department.encode()),
                ("source_topic", at.topic.encode()),
                ("source_partition", str(at.partition).encode()),
                ("source_offset", str(at.offset).encode()),
            )
            batch.messages.append(Record(names.dead_letters, None, raw, headers=headers))
        for target, key, raw in output.reroutes:
            batch.messages.append(Record(names.routed, key.encode(), raw, partition=target))
        for key, body in output.alerts:
            batch.messages.append(Record(names.alerts, key.encode(), body))
        for key, body in output.scores:
            batch.scores[key.encode()] = body

    # --- recovery -------------------------------------------------------------------
    def forget(self, partition: int) -> None:
        """The partition moved to another worker: drop what was derived from its state."""
        self._known.discard(partition)
        self.last_activity.pop(partition, None)
        self.next_offset.pop(partition, None)
        if self.processor is not None:
            self.processor.wakeups.forget_partition(partition)
        if self.books is not None:
            self.books.evict_clean(keep=0)  # another worker may change its books now

    def _recover(self, partition: int) -> None:
        """First batch of a partition in this process: restore its clock and wake-ups."""
        if partition in self._known:
            return
        self._known.add(partition)
        processor = self.processor
        assert processor is not None
        raw_clock = self.table.get(clock_key(partition))
        if raw_clock is not None:
            processor.clocks.observe(partition, int(raw_clock))
        clock_us = processor.clocks.now(partition)
        count = 0
        for raw_key, raw_book in list(self.table.items()):
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            if key.startswith(CLOCK_PREFIX) or processor.partition_for(key) != partition:
                continue
            from pipeline.journey import JourneyBook

            book = JourneyBook.from_bytes(bytes(raw_book))
            processor.wakeups.schedule(partition, key, processor._next_wake(book, clock_us))
            count += 1
        log.info(
            "partition recovered partition=%d clock_us=%d books=%d", partition, clock_us, count
        )

    # --- flushing -------------------------------------------------------------------
    def start_flush(self) -> None:
        if self._flush is None or self._flush.done():
            self._flush = asyncio.ensure_future(self._flush_or_stop())

    async def _flush_or_stop(self) -> None:
        try:
            await self._flush_all()
        except Exception:
            # Inserts retry forever, so this is the state table or an ack failing. The
            # taken batches can no longer be acked in order: stop, and let the restart
            # replay them from the committed offsets (effectively-once still holds).
            log.critical("flush failed; stopping the worker to replay", exc_info=True)
            os.kill(os.getpid(), signal.SIGTERM)
            raise

    async def flush_now(self) -> None:
        self.start_flush()
        assert self._flush is not None
        await asyncio.shield(self._flush)

    async def _flush_all(self) -> None:
        assert self.sink is not None and self.books is not None and self.processor is not None
        batches = self.sink.take()
        if not batches:
            return
        generation, books = self.books.snapshot(b.partition for b in batches)
        clocks = {b.partition: self.processor.clocks.now(b.partition) for b in batches}
        marks = [time.monotonic()]
        await self._reconcile(batches)
        marks.append(time.monotonic())
        await self.sink.write(batches)
        marks.append(time.monotonic())
        # Then the messages, then the state: a crash in between replays input whose
        # messages are sent again (at least once), never input whose state is ahead of them.
        await self._send_messages(batches)
        marks.append(time.monotonic())
        await self._persist(batches, books, clocks)
        marks.append(time.monotonic())
        for batch in batches:
            self.books.persisted(batch.partition, generation)
            for event in batch.events:
                await self.stream.ack(event)
        # Commit now rather than at Faust's next commit tick: the offsets are what tells
        # producers and operators (lag) that the events are stored. The acks stand; if
        # this commit fails (a rebalance), Faust's own commit loop commits them later.
        try:
            await self.stream.app.consumer.commit()
        except Exception as exc:  # logged; the acks stand, nothing is lost
            log.warning("commit after flush failed; Faust's commit loop retries error=%s", exc)
        self.books.evict_clean()
        self.processor.metrics.flushed()  # /readyz: flush age and store health
        self.processor.metrics.buffered_rows = self.sink.buffered_rows
        marks.append(time.monotonic())
        phases = dict(zip(("reconcile", "insert", "send", "state", "commit"),
                          (b - a for a, b in itertools.pairwise(marks)), strict=True))  # fmt: skip
        log.info(
            "flushed partitions=%d rows=%d events=%d seconds=%.3f %s",
            len(batches), sum(b.row_count for b in batches),
            sum(len(b.events) for b in batches), marks[-1] - marks[0],
            " ".join(f"{name}={seconds:.3f}" for name, seconds in phases.items()),
        )  # fmt: skip

    async def _send_messages(self, batches: list[PartitionBatch]) -> None:
        assert self.outbox is not None and self.processor is not None
        records = [record for batch in batches for record in batch.messages]
        scores = self.names.scores
        records += [Record(scores, key, body) for b in batches for key, body in b.scores.items()]
        await self.outbox.send(records)
        metrics = self.processor.metrics
        metrics.add("scores", sum(len(batch.scores) for batch in batches))
        metrics.add("alerts", sum(r.topic == self.names.alerts for r in records))

    async def _reconcile(self, batches: list[PartitionBatch]) -> None:
        assert self.sink is not None
        for batch in batches:
            if not batch.signal_sets:
                continue
            at = Position("reconcile", batch.partition, 0, datetime.now(UTC))
            orphans = await asyncio.to_thread(
                orphaned_signals, self.sink.store, batch.signal_sets, at
            )
            if orphans:
                log.info("retracting orphaned signals partition=%d count=%d",
                         batch.partition, len(orphans))  # fmt: skip
                batch.rows.setdefault("journey_signals", []).extend(orphans)

    async def _persist(
        self,
        batches: list[PartitionBatch],
        books: dict[int, dict[str, bytes]],
        clocks: dict[int, int],
    ) -> None:
        """Write each batch's books and clock to the state table: changelog first, then the
        local store with the changelog offset it now holds (what Faust's own table writes
        do, minus one send per key)."""
        assert self.outbox is not None
        changelog = self.table.changelog_topic.get_topic_name()
        state = {
            batch.partition: {**books[batch.partition],
                              clock_key(batch.partition): str(clocks[batch.partition]).encode()}
            for batch in batches
        }  # fmt: skip
        offsets = await self.outbox.send(
            Record(changelog, key.encode(), raw, partition=partition)
            for partition, values in state.items()
            for key, raw in values.items()
        )
        for batch in batches:
            with in_partition(batch.events[-1]):
                for key, raw in state[batch.partition].items():
                    self.table.data[key] = raw
                offset = offsets.get((changelog, batch.partition))
                if offset is not None:
                    self.table.data.set_persisted_offset(TP(changelog, batch.partition), offset)
