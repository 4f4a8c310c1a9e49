"""What the Faust app delegates to: fetched batches in, journey state and checkpoints kept in step.

Built by the worker once the store is open, with every collaborator: the state table, the
book cache, the processor, the sink and the checkpoint. The intake hands it whole
fetched batches (`handle`); a checkpoint runs when the sink is due (`start_flush`, also
from a timer) and at a stop (`close`). The order of a checkpoint's effects, which is the
effectively-once argument, is in `pipeline.stream.checkpoint`.

After a failed checkpoint the worker's memory (books, de-dup ids, clocks) is ahead of what
was stored, so no later checkpoint may run: the runtime takes no more input, and the worker
stops with a non-zero exit and replays from the committed offsets when it starts again.

An exception while processing (a bug: bad input is the validator's to reject) leaves memory
half updated too, but it need not stop the worker: the runtime rewinds to the last
checkpoint within the process and reads the input again, and a message that keeps failing
is dead-lettered with `processing_error` (`_rewind`; `pipeline.stream.replays`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TypeVar

from pipeline.contract import Rejection
from pipeline.journey import JourneyBook, routing_key
from pipeline.stream.book_cache import CLOCK_PREFIX, BookCache, clock_key
from pipeline.stream.checkpoint import Checkpoint, CommitOffsets
from pipeline.stream.collector import PacedCollector
from pipeline.stream.intake import Fetched
from pipeline.stream.outbox import Outbox, Record
from pipeline.stream.processor import Inbound, JourneyProcessor, Output, Unsettled
from pipeline.stream.reconcile import signal_corrections
from pipeline.stream.replays import Replays, describe
from pipeline.stream.rows import Position, dead_letter_row
from pipeline.stream.sink import ClickHouseSink, PartitionBatch, PermanentSinkError
from pipeline.stream.state import StateTable, in_partition
from pipeline.stream.topics import TICK_KEY, TopicNames

log = logging.getLogger("pipeline.stream")

Stop = Callable[[int], None]  # asks the worker to stop with this exit code
# Seeks the consumer: (topic, partition) -> the offset to read next.
Rewind = Callable[[dict[tuple[str, int], int]], Awaitable[object]]
PROCESSING_ERROR = "processing_error"
# Records processed between two turns of the event loop. Each step of a running checkpoint
# (an insert, a send, the commit) resumes only at a turn: at 1,000 records (about 50 ms)
# a checkpoint's dozen awaits added about 0.3 s to it. A journey's row is built once per
# checkpoint (`PartitionBatch.seal`), so smaller slices do not write more of them; but a
# journey is re-scored once per slice it has events in, so slices of 100 (tried for the
# context API's latency) cost the worker CPU on a backlog; at 1,000 events/s fetches are
# smaller than a slice anyway.
SLICE = 250
T = TypeVar("T")


class Runtime:
    def __init__(
        self,
        *,
        processor: JourneyProcessor,
        books: BookCache,
        sink: ClickHouseSink,
        state: StateTable,
        outbox: Outbox,
        names: TopicNames,
        touchpoints_topic: str,
        commit_offsets: CommitOffsets,
        stop: Stop,
        rewind: Rewind,
        attempts: int = 2,
        max_message_bytes: int = 1_048_576,
    ) -> None:
        self.processor = processor
        self.books = books
        self.sink = sink
        self.state = state
        self.names = names
        self.touchpoints_topic = touchpoints_topic
        self.stop = stop
        self.rewind_to = rewind
        self.max_message_bytes = max_message_bytes
        self.replays = Replays(attempts)
        self.metrics = processor.metrics
        self.checkpoint = Checkpoint(
            books=books,
            clock_of=processor.clocks.now,
            reconcile=self._reconcile,
            rows=sink,
            messages=outbox,
            state=state,
            commit_offsets=commit_offsets,
            topics=names,
        )
        self.failed = False
        self.stopping = False
        self.closed = False  # the stop's last checkpoint ran (or gave up): no other starts
        self.rewinding = False  # no checkpoint may start: memory is half updated
        self.erasing = False  # an erasure deletes from the store: no checkpoint, no input
        self.moving = False  # a rebalance began: no input is taken until the assignment
        self.collector = PacedCollector()
        # Cleared while a checkpoint takes its snapshot in a thread (`Checkpoint.commit`):
        # no record is processed meanwhile, so the books it encodes stand still.
        self._intake_open = asyncio.Event()
        self._intake_open.set()
        self._flush: asyncio.Task[None] | None = None
        self._flushing: list[PartitionBatch] = []  # the batches the running checkpoint took
        self._known: set[int] = set()
        self.last_activity: dict[int, float] = {}
        self.next_offset: dict[int, int] = {}

    # --- batches --------------------------------------------------------------------
    async def handle(self, fetched: Fetched) -> None:
        """One fetch: each partition's records through the processor into the buffers."""
        if self.failed or self.moving or self.closed:
            return  # dropped unprocessed: the restart (the assignment) reads them again
        while self.erasing:  # its recomputed days must not lose rows written meanwhile
            await asyncio.sleep(0.05)
        try:
            await self._handle(fetched)
        except _ProcessingFailed as failure:
            await self._rewind(failure)
        except Exception as exc:
            # Outside a batch's processing (a partition's recovery, a poison pill's dead
            # letter): no message to set aside. Stopping with exit 1 is visible to a
            # supervisor, where a stalled intake was not; nothing more may be committed.
            self._fail(f"processing failed: {describe(exc)}", exc)

    async def _handle(self, fetched: Fetched) -> None:
        now = datetime.now(UTC)
        for tp, records in fetched.items():
            if records:
                self.replays.taken(tp.topic, tp.partition, records[0].offset)
        # Each topic-partition's records in slices of at most SLICE, partition by partition
        # (a stable sort keeps the fetch's order within one).
        slices = sorted(
            (
                (tp.partition, tp.topic, records[start : start + SLICE])
                for tp, records in fetched.items()
                for start in range(0, len(records), SLICE)
            ),
            key=itemgetter(0),
        )
        for partition, topic, records in slices:
            if partition not in self._known and not self.moving:
                await self._recover(partition)
            if self.moving:
                break  # the rest is read again after the assignment (see `revoke`)
            if not self._intake_open.is_set():  # a checkpoint's snapshot is being taken
                await self._intake_open.wait()
                if self.moving or self.failed:
                    break
            for run, counted in self.replays.runs(topic, partition, records):
                self._take(topic, partition, run, now, counted)
            # A fetch can hold a second of work: let the running checkpoint's produce
            # requests and acks through between slices, or it waits for the whole fetch.
            await asyncio.sleep(0)
        running = self._running_checkpoint() is not None
        if self.sink.due() and not (self.moving or self.failed or running):
            # The checkpoint catches up the books the intake left (`_settle`); here first,
            # where a catch-up that raises is set aside like any failed message. Not while
            # a checkpoint runs (under a backlog, most fetches): the next one settles as it
            # starts, so a journey is caught up once per checkpoint, not once per fetch.
            if not self._intake_open.is_set():  # a snapshot is encoding the books
                await self._intake_open.wait()
            self._settle(strict=True)
            self.start_flush()
        self.metrics.buffered_rows = self.sink.buffered_rows
        self.collector.after_batch()
        while self.sink.full() and not (self.failed or self.closed):  # stored before more
            await self.flush_now()

    def _take(
        self, topic: str, partition: int, records: Sequence[Any], now: datetime, counted: bool
    ) -> None:
        """Records of one topic-partition into its buffer: processed, or, for a poison pill,
        dead-lettered. `counted` false: read again after a rewind, counted before."""
        first, last = records[0].offset, records[-1].offset
        error = self.replays.poison(topic, partition, first) if first == last else None
        batch = self.sink.batch(partition)
        if error is not None:
            self._buffer(batch, self._poison_pill(topic, records[0], error, now, counted))
        else:
            try:
                inbound = self._inbound(topic, partition, records)
                counting = self.metrics.counting(keep=counted)
                with in_partition(self.touchpoints_topic, partition), counting:
                    output = self.processor.process(
                        partition, inbound, now, build_rows=False, settle=False
                    )
                self._buffer(batch, output)
            except Exception as exc:
                raise _ProcessingFailed(topic, partition, [r.offset for r in records]) from exc
        batch.add(topic, first, last, len(records))
        self.replays.processed(topic, partition, last)

    def _inbound(self, topic: str, partition: int, records: Sequence[Any]) -> list[Inbound]:
        """Records of one topic-partition as the processor takes them. The intake's activity
        and next offset are noted once per run, not per record; Inbound is built
        positionally (topic, partition, offset, value, produced_at, tick_us)."""
        if topic == self.touchpoints_topic:
            self.last_activity[partition] = time.monotonic()
            self.next_offset[partition] = records[-1].offset + 1
            return [Inbound(topic, partition, r.offset, r.value, (r.timestamp or 0) / 1000)
                    for r in records]  # fmt: skip
        inbound = []
        for r in records:  # re-keyed events and idle ticks
            if r.key == TICK_KEY and (tick_us := _tick_us(r.value)) is not None:
                inbound.append(Inbound(topic, partition, r.offset, b"", 0.0, tick_us))
            else:
                inbound.append(Inbound(topic, partition, r.offset, r.value,
                                       (r.timestamp or 0) / 1000))  # fmt: skip
        return inbound

    def _buffer(self, batch: PartitionBatch, output: Output) -> None:
        """Queue the output's rows and messages; the checkpoint stores and sends them."""
        for table, rows in output.rows.items():
            batch.rows.setdefault(table, []).extend(rows)
        batch.latest.merge(output.latest)
        batch.produced_at.extend(output.produced_at)
        batch.signal_sets.update(output.signal_sets)
        batch.moved.update(output.moved)
        names = self.names
        for raw, at, rejection in output.dead_letters:
            batch.messages.append(self._dead_letter(raw, at, rejection))
        for target, key, raw in output.reroutes:
            batch.messages.append(Record(names.routed, key.encode(), raw, partition=target))
        for key, body in output.alerts:
            batch.messages.append(Record(names.alerts, key.encode(), body))
        for key, body in output.scores:
            batch.scores[key.encode()] = body

    def _dead_letter(self, raw: bytes, at: Position, rejection: Rejection) -> Record:
        """The dead-letter topic's message: the payload as received, the reason in headers.

        A payload near the broker's size limit does not fit once the headers are added
        (the broker refuses the batch, and the checkpoint with it): it is cut to fit
        `max_message_bytes`, and `raw_size` and `raw_sha256` name the whole payload, which
        the dead_letters row keeps.
        """
        headers = [
            ("reason_code", _utf8(rejection.code)),
            ("reason", _utf8(rejection.message)),
            ("field", _utf8(rejection.field)),
            ("department", _utf8(rejection.department)),
            ("source_topic", _utf8(at.topic)),
            ("source_partition", str(at.partition).encode()),
            ("source_offset", str(at.offset).encode()),
            ("raw_size", str(len(raw)).encode()),
            ("raw_sha256", hashlib.sha256(raw).hexdigest().encode()),
            ("raw_truncated", b"0"),
        ]
        # A record batch of one: its header (61 bytes), the record's own varints, and
        # each header's length prefixes, generously.
        overhead = 128 + sum(len(key) + len(value) + 10 for key, value in headers)
        room = self.max_message_bytes - overhead
        if len(raw) > room:
            log.warning(
                "dead letter cut to fit the topic topic=%s partition=%d offset=%d bytes=%d "
                "kept=%d code=%s", at.topic, at.partition, at.offset, len(raw), max(room, 0),
                rejection.code,
            )  # fmt: skip
            raw = raw[: max(room, 0)]
            headers[-1] = ("raw_truncated", b"1")
        return Record(self.names.dead_letters, None, raw, headers=tuple(headers))

    # --- poison pills ---------------------------------------------------------------
    async def _rewind(self, failure: _ProcessingFailed) -> None:
        """Back to the last checkpoint, to read the input again; the message that failed is
        processed alone, and dead-lettered once it has failed `attempts` times.

        Why nothing is lost or counted twice: the running checkpoint is awaited (it holds
        only batches processed before the failure); every batch buffered since is dropped,
        and so is all memory derived from input (`JourneyProcessor.reset`, and each
        partition's recovery runs again); the consumer seeks to the offsets the last
        checkpoint committed (or the first taken since the partition was assigned). The
        state table, the store and the committed offsets then stand at one checkpoint, and
        memory is that of a worker started there: the replay is the restart that the
        checkpoint's argument covers (`pipeline.stream.checkpoint`), within the process.
        Only the counters carry over, and the replay does not count again what they hold.
        """
        exc = failure.__cause__ or failure
        error = describe(exc)
        topic, partition, offsets = failure.topic, failure.partition, failure.offsets
        self.metrics.add("processing_failures")
        attempt = self.replays.failed(topic, partition, offsets, error)
        log.error(
            "processing failed topic=%s partition=%d offsets=%d-%d attempt=%s error=%s; "
            "reading again from the last checkpoint%s", topic, partition, offsets[0],
            offsets[-1], attempt or "-", error,
            " (it is dead-lettered there)" if attempt >= self.replays.attempts else
            " (each of these messages alone)" if not attempt else "",
            exc_info=exc,
        )  # fmt: skip
        self.rewinding = True
        try:
            if (running := self._running_checkpoint()) is not None:
                await asyncio.wait([running])  # a failed one stops the worker
            if self.failed:
                return
            self.sink.take()  # dropped: read again
            self.processor.reset()
            self._known.clear()
            self.next_offset.clear()
            self.replays.rewound()
            await self.rewind_to(dict(self.replays.replay_from))
        except Exception as exc:
            self._fail(f"reading again after a processing failure failed: {describe(exc)}", exc)
        finally:
            self.rewinding = False
            self.metrics.buffered_rows = self.sink.buffered_rows

    def _poison_pill(
        self, topic: str, record: Any, error: str, now: datetime, counted: bool
    ) -> Output:
        """The dead letter of a message whose processing kept raising."""
        raw = record.value if record.value is not None else b""
        at = Position(topic, record.partition, record.offset, now)
        rejection = Rejection(
            code=PROCESSING_ERROR,
            field="message",
            message=f"message: processing raised {error} ({self.replays.attempts} attempts), "
            "expected none: a bug in the pipeline, not in the event; set aside so that "
            "the pipeline goes on",
            department=self._department_of(raw, now),
        )
        output = Output()
        output.dead_letters.append((raw, at, rejection))
        output.add_row("dead_letters", dead_letter_row(raw, rejection, at))
        if counted:  # else dead-lettered before a later rewind, and counted then
            if topic == self.touchpoints_topic:
                self.metrics.add("received")
                self.metrics.reject(PROCESSING_ERROR)
            else:
                self.metrics.add("routed_rejected")
            self.metrics.add("poison_pills")
            log.error("poison pill dead-lettered topic=%s partition=%d offset=%d code=%s "
                      "error=%s", topic, record.partition, record.offset, PROCESSING_ERROR,
                      error)  # fmt: skip
        return output

    def _department_of(self, raw: bytes, now: datetime) -> str:
        try:
            return self.processor.validator.validate(raw, now).department
        except Exception:  # the validator may be what raised
            return ""

    # --- rebalances -----------------------------------------------------------------
    async def revoke(self, partitions: Iterable[int]) -> None:
        """The group takes partitions away (every one: Faust's rebalances are eager).

        What was taken from them is stored and committed now, while this worker still
        owns them; then its memory of them is dropped (`forget`), since their next owner
        changes their books, clock and wake-ups. Between the two, no input may be taken:
        a fetch being taken in when the rebalance began (`handle` yields between slices,
        and the revoke runs there) would otherwise buffer the rest of its records after
        this checkpoint took the buffers, and the next checkpoint would store them, write
        their books to the state table's changelog and try to commit them while their
        next owner reads and writes the same partitions: an older book written after the
        next owner's overwrites it at every later recovery, and this worker's own copy of
        the partition would record the changelog as read up to there, skipping what the
        next owner wrote before it. So `moving` stops the intake until the assignment
        (`assigned`); the records left untaken were never buffered, processed or counted,
        and are read again: the consumer starts every partition it is assigned, kept or
        new, at its committed offset.
        """
        self.moving = True
        await self.flush_now()
        for partition in partitions:
            self.forget(partition)

    def assigned(self) -> None:
        """The group's new assignment: input is taken again (`revoke`)."""
        self.moving = False

    # --- recovery -------------------------------------------------------------------
    def forget(self, partition: int) -> None:
        """The partition moved to another worker: drop what was derived from its state."""
        self._known.discard(partition)
        self.replays.forget(partition)
        self.last_activity.pop(partition, None)
        self.next_offset.pop(partition, None)
        self.processor.wakeups.forget_partition(partition)
        self.processor.customers.forget(partition)
        self.processor.forget_unsettled(partition)
        self.books.evict_clean(keep=0)  # another worker may change its books now

    async def _recover(self, partition: int) -> None:
        """First batch of a partition in this process: restore its clock and wake-ups.

        Books an older version filed under a bare customer id (before `book_key` told a
        customer's book from a journey's of the same id) are re-filed under their key here,
        unchanged, so they are the state of the last checkpoint still; the old copy is
        never read again (`BookCache.get` checks the kind), and is skipped from then on.
        """
        self._known.add(partition)
        processor, refile, count = self.processor, {}, 0
        erased: list[str] = []
        with in_partition(self.touchpoints_topic, partition):
            raw_clock = self.state.read(clock_key(partition))
            if raw_clock is not None:
                processor.clocks.observe(partition, int(raw_clock))
            clock_us = processor.clocks.now(partition)
            processor.customers.start(partition)
            for key, raw_book in self.state.items(partition):
                if key.startswith(CLOCK_PREFIX) or not self._may_hold(partition, key):
                    continue
                book = JourneyBook.from_bytes(raw_book)
                if processor.partition_for(book.key) != partition:
                    continue
                if processor.ledger.is_erased(book.customer_id):
                    erased.append(key)  # erased while this worker was stopped
                    continue
                if book.book_key != key:
                    if self.state.read(book.book_key) is not None:
                        continue  # re-filed before: this copy is stale
                    refile[book.book_key] = raw_book
                if book.by_journey_id:
                    processor.customers.add(partition, book.customer_id, book.book_key)
                wake_at = processor.next_wake(book, clock_us)
                processor.wakeups.schedule(partition, book.book_key, wake_at)
                count += 1
        if refile:
            await self.state.persist({partition: refile})
        if erased:
            await self.state.forget({partition: erased})
        log.info("partition recovered partition=%d clock_us=%d books=%d refiled=%d erased=%d",
                 partition, clock_us, count, len(refile), len(erased))  # fmt: skip

    # --- erasures -------------------------------------------------------------------
    async def between_checkpoints(self, work: Callable[[], T]) -> T:
        """Store everything taken so far, then run `work` (in a thread) with no checkpoint
        and no input taken meanwhile: an erasure deletes and recomputes whole days, and a
        checkpoint's rows of those days written during it could be deleted with them."""
        await self.flush_now()
        self.erasing = True
        try:
            await self.flush_now()  # one that started before `erasing` was set
            if self.failed:
                raise RuntimeError("the worker stopped after a failed checkpoint")
            return await asyncio.to_thread(work)
        finally:
            self.erasing = False

    async def forget_erased(self) -> int:
        """Delete the books of erased customers (the processor's ledger) from the state
        table and from memory; the number of books deleted."""
        erased: dict[int, list[str]] = {}
        events: set[str] = set()
        ledger, place = self.processor.ledger, self.processor.partition_for
        for partition in sorted(self._known):
            with in_partition(self.touchpoints_topic, partition):
                for key, raw_book in self.state.items(partition):
                    if key.startswith(CLOCK_PREFIX) or not self._may_hold(partition, key):
                        continue
                    book = JourneyBook.from_bytes(raw_book)
                    if place(book.key) == partition and ledger.is_erased(book.customer_id):
                        erased.setdefault(partition, []).append(key)
                        events |= book.event_ids()
        self.processor.dedup.forget(events)
        self.books.drop(key for keys in erased.values() for key in keys)
        if erased:
            await self.state.forget(erased)
        return sum(len(keys) for keys in erased.values())

    def _may_hold(self, partition: int, key: str) -> bool:
        """Whether `key` may be a book of `partition` (decoding the book tells for sure)."""
        place, routed = self.processor.partition_for, routing_key(key)
        # An older version kept every book under its Kafka key, prefix-like or not.
        return place(routed) == partition or (routed != key and place(key) == partition)

    # --- checkpoints ----------------------------------------------------------------
    def start_flush(self) -> None:
        if self.failed or self.rewinding or self.erasing or self.closed:
            return
        if self._running_checkpoint() is None:
            self._flush = asyncio.ensure_future(self._checkpoint())

    def _running_checkpoint(self) -> asyncio.Task[None] | None:
        """The checkpoint started and not ended, if any."""
        flush = self._flush
        return flush if flush is not None and not flush.done() else None

    async def flush_now(self) -> None:
        """Run a checkpoint of everything buffered so far (after the one running, if any)."""
        if (running := self._running_checkpoint()) is not None:
            await asyncio.shield(running)
        self.start_flush()
        if self._flush is not None:
            await asyncio.shield(self._flush)

    def _settle(self, strict: bool) -> None:
        """Catch up the books the intake left (`JourneyProcessor.settle`), into their
        partitions' batches. Before every take of the batches, with no await in between:
        a book is left only by input taken into a batch still buffered, so each
        checkpoint holds every catch-up its input caused, and a settle never starts a batch
        without source offsets (whose deduplication token could repeat an earlier one).

        A catch-up that raises: with `strict` (the intake's, as its batch becomes due),
        `_ProcessingFailed` for the book's last message, which is then read again and, if it
        keeps failing, dead-lettered, as a failure in `process` is. Otherwise (a checkpoint
        from the timer, a stop, a rebalance) it is logged and counted, and what the books
        caught up before it caused is kept; the book stays as it was, the state a restarted
        worker also holds until the book's next event or wake-up catches it up."""
        for partition in self.processor.unsettled():
            batch = self.sink.batch(partition)
            with in_partition(self.touchpoints_topic, partition), self.metrics.counting():
                try:
                    output = self.processor.settle(partition, build_rows=False)
                except Unsettled as failed:
                    at = failed.at
                    if strict:
                        raise _ProcessingFailed(at.topic, partition, [at.offset]) from (
                            failed.__cause__ or failed
                        )
                    self.metrics.add("processing_failures")
                    log.error(
                        "catch-up failed book=%s topic=%s partition=%d offset=%d error=%s; "
                        "the book is caught up at its next event or wake-up", failed.key,
                        at.topic, partition, at.offset, describe(failed.__cause__ or failed),
                        exc_info=failed.__cause__,
                    )  # fmt: skip
                    output = failed.output
            self._buffer(batch, output)

    async def _checkpoint(self) -> None:
        self._settle(strict=False)  # done by the intake already, unless the timer flushes
        batches = self.sink.take()
        if not batches:
            return
        started = time.monotonic()
        self._intake_open.clear()  # reopened by the checkpoint once its snapshot is taken
        self._flushing = batches
        try:
            await self.checkpoint.commit(batches, self._intake_open.set)
        except asyncio.CancelledError:
            # Cancelled by the stop's deadline (or Faust's shutdown after it): what it held
            # is not committed and is replayed at the next start; the stop itself is clean.
            if self.stopping:
                self.failed = True
                log.warning("stop: checkpoint cancelled; its input is replayed at start")
            else:
                self._fail("checkpoint cancelled", None)
            raise
        except PermanentSinkError as exc:
            self._fail(f"{exc}; fix the table (a migration not applied?) and restart", exc)
            return
        except Exception as exc:
            self._fail(f"checkpoint failed: {type(exc).__name__}: {exc}", exc)
            return
        self._flushing = []
        self.replays.committed(
            {tp: offset for b in batches if b.partition in self._known
             for tp, offset in b.next_offsets().items()}
        )  # fmt: skip
        self.metrics.buffered_rows = self.sink.buffered_rows
        self.metrics.flushed()
        log.info(
            "flushed partitions=%d rows=%d events=%d seconds=%.3f %s",
            len(batches), sum(b.row_count for b in batches), sum(b.events for b in batches),
            time.monotonic() - started,
            " ".join(f"{step}={s:.3f}" for step, s in self.checkpoint.last_seconds.items()),
        )  # fmt: skip

    def _fail(self, reason: str, exc: BaseException | None) -> None:
        """No later checkpoint may run (memory is ahead of the store): stop and replay."""
        if self.failed:
            return
        self.failed = True
        log.critical("%s; stopping the worker: the restart replays from the last commit",
                     reason, exc_info=exc)  # fmt: skip
        self.stop(1)

    @property
    def uncommitted_events(self) -> int:
        """Messages taken and not committed: buffered, or held by a checkpoint that is
        running or did not finish."""
        return self.sink.buffered_events + sum(batch.events for batch in self._flushing)

    def rerouting_to(self, partition: int) -> bool:
        """Whether an event re-keyed to `partition` is taken and not yet sent (buffered, or
        held by the running checkpoint): an idle tick must not overtake it (`ticks`)."""
        routed = self.names.routed
        return any(
            record.partition == partition and record.topic == routed
            for batch in (*self.sink.pending(), *self._flushing)
            for record in batch.messages
        )

    async def close(self, timeout: float) -> None:
        """At a stop, after the intake closed: store and commit what was taken, within
        `timeout`; what is not committed by then is replayed at the next start.

        A checkpoint still running at the deadline is cancelled, and none starts after
        this returns (`closed`): the stop goes on to stop the producer and the consumer,
        and a checkpoint left running would fail on them (`NotReady: Producer service not
        yet started`) and turn a clean stop into exit 1. Cancelling one is safe at any
        step: its offsets are not committed, so its input is replayed at the next start
        (`pipeline.stream.checkpoint`)."""
        self.stopping = True
        try:
            await asyncio.wait_for(self.flush_now(), timeout)
        except TimeoutError:
            self.closed = True
            flush = self._flush
            if flush is not None and not flush.done():
                flush.cancel()
                await asyncio.wait([flush])
            log.warning(
                "stop: checkpoint not done within %.1fs; %d taken messages are replayed at "
                "the next start", timeout, self.uncommitted_events,
            )  # fmt: skip
            return
        finally:
            self.closed = True
        if self.failed:
            log.warning("stop: %d taken messages were not stored; they are replayed at start",
                        self.uncommitted_events)  # fmt: skip

    async def _reconcile(self, batches: list[PartitionBatch]) -> None:
        """One query for every batch's journeys (one per partition cost a tenth of a
        checkpoint at 5,000 events/s); each correction goes to its journey's batch."""
        owner = {journey: batch for batch in batches for journey in batch.signal_sets}
        if not owner:
            return
        signal_sets = {journey: sets for batch in batches for journey, sets in
                       batch.signal_sets.items()}  # fmt: skip
        at = Position("reconcile", 0, 0, datetime.now(UTC))
        corrections = await asyncio.to_thread(
            signal_corrections, self.sink.store, signal_sets, at, self.processor.model.version
        )
        for row in corrections:
            batch = owner[row["journey_id"]]
            row["_partition"] = batch.partition
            batch.rows.setdefault("journey_signals", []).append(row)
        if corrections:
            retracted = sum(1 for row in corrections if not row["active"])
            log.info("correcting signals a lost run left stored retracted=%d reasserted=%d "
                     "journeys=%d", retracted, len(corrections) - retracted,
                     len({row["journey_id"] for row in corrections}))  # fmt: skip


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")  # a lone surrogate cannot stop a flush


def _tick_us(value: bytes | None) -> int | None:
    """The moment of an idle tick (epoch microseconds, as the worker sends it); None for
    any other value, which is then checked as a touchpoint and rejected, not crashed on.
    At most 17 digits: before the year 5000, which every date conversion can hold."""
    if value is None or not value.isdigit() or len(value) > 17:
        return None
    return int(value)


class _ProcessingFailed(Exception):
    """Processing these records of one topic-partition raised (the cause)."""

    def __init__(self, topic: str, partition: int, offsets: list[int]) -> None:
        super().__init__(f"{topic}-{partition} offsets {offsets[0]}-{offsets[-1]}")
        self.topic, self.partition, self.offsets = topic, partition, offsets
