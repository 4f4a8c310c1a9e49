"""The checkpoint: the one place that orders a flush's effects, which is what makes results
effectively-once.

`Checkpoint.commit(batches)` runs these steps, in this order, for the batches taken from
the sink's buffers (every source message taken since the last checkpoint):

1. Snapshot the dirty journey books and the event-time clock of each batch's partition:
   the state that produced the batches' rows and messages (input taken later may change
   the books again; it belongs to the next checkpoint); the batches' journey and signal
   rows and score messages are built from the journeys' last states here, once. This
   step runs in a thread, with no input taken meanwhile (the runtime holds its intake), so
   the event loop stays free for the context API's reads.
2. Reconcile: signals a replay no longer produces (the journey's current set lost them) get
   retraction rows, so a replay after a crash cannot leave a stale signal stored.
3. Rows: one insert per table into ClickHouse with a deterministic deduplication token
   (a retried insert is dropped by ClickHouse), then the touchpoint rows that moved to
   another journey are deleted under their old journey id (a replay deletes nothing new).
4. Messages: dead letters, re-keyed events, alerts and score snapshots, sent as whole
   producer batches and awaited (acks=all, idempotent producer). Steps 2-3 (ClickHouse)
   and step 4 (Kafka) run concurrently: neither needs the other, and both end before
   step 5. If one fails, the other is cancelled (or finishes) and nothing later runs.
5. State: the books and clocks of step 1 to the state table: changelog first, awaited,
   then the local store with the changelog offset it now holds.
6. Offsets: commit, per source topic-partition, the offset after the last message taken.
7. The books of step 1 are marked clean (equal to their table copy) and may be evicted.

Why this order: a crash or failure at any step leaves the offsets of step 6 uncommitted, so
the input is read again. Its state either did not reach the table (steps 1-4 failed: the
replay recomputes the same rows and messages; ClickHouse drops the re-inserted rows by
token or by `ReplacingMergeTree` version, and score snapshots are keyed) or did (step 6
failed: the replayed events are duplicates of the stored books, and produce nothing). State
written before the rows (5 before 3) would lose the rows of a crash in between: the replay
would find the events already in the books. State before the messages (5 before 4) loses
the messages the same way; offsets before anything (6 first) loses everything taken. Rows
and messages in either order (3 and 4 concurrent) change nothing of this: a crash while
either runs leaves state and offsets unwritten, and the replay writes both again (a
message may then be sent twice, as after a crash between 4 and 6 in any order; rows are
dropped by token or version).

A failed step raises; the caller must then stop taking input and let the restart replay
(`Runtime`): the worker's memory (books, de-dup ids, clocks) is ahead of what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from pipeline.stream.book_cache import BookCache, clock_key
from pipeline.stream.outbox import Record
from pipeline.stream.sink import PartitionBatch
from pipeline.stream.topics import TopicNames

log = logging.getLogger("pipeline.stream")

STEPS = ("snapshot", "reconcile", "rows", "messages", "state", "offsets", "clean")


class RowWriter(Protocol):
    async def write(self, batches: list[PartitionBatch]) -> None: ...


class MessageSender(Protocol):
    async def send(self, records: Iterable[Record]) -> Mapping[tuple[str, int], int]: ...


class StateWriter(Protocol):
    async def persist(self, state: dict[int, dict[str, bytes]]) -> None: ...


Reconcile = Callable[[list[PartitionBatch]], Awaitable[None]]
CommitOffsets = Callable[[dict[tuple[str, int], int]], Awaitable[object]]


class Checkpoint:
    def __init__(
        self,
        *,
        books: BookCache,
        clock_of: Callable[[int], int],
        reconcile: Reconcile,
        rows: RowWriter,
        messages: MessageSender,
        state: StateWriter,
        commit_offsets: CommitOffsets,
        topics: TopicNames,
    ) -> None:
        self.books = books
        self.clock_of = clock_of
        self.reconcile = reconcile
        self.rows = rows
        self.messages = messages
        self.state = state
        self.commit_offsets = commit_offsets
        self.topics = topics
        self.last_seconds: dict[str, float] = {}

    async def commit(
        self, batches: list[PartitionBatch], snapshotted: Callable[[], object] = lambda: None
    ) -> None:
        """Steps 1-7 above for `batches`; raises if any step failed (nothing committed).

        Step 1 runs in a thread: building a second's rows and encoding its books took tens
        of milliseconds of the event loop, which the context API's requests waited behind.
        The caller must take no input (change no book, clock or taken batch) until
        `snapshotted` is called, right after step 1; reading them meanwhile is safe."""
        if not batches:
            snapshotted()
            return
        seconds: dict[str, float] = {}
        with _timed(seconds, "snapshot"):
            try:
                generation, state = await asyncio.to_thread(self._snapshot, batches)
            finally:
                snapshotted()
        await _together(
            self._store_rows(batches, seconds),
            _timed_await(seconds, "messages", self.messages.send(self._records(batches))),
        )
        with _timed(seconds, "state"):
            await self.state.persist(state)
        with _timed(seconds, "offsets"):
            offsets: dict[tuple[str, int], int] = {}
            for batch in batches:
                offsets.update(batch.next_offsets())
            await self.commit_offsets(offsets)
        with _timed(seconds, "clean"):
            for batch in batches:
                self.books.persisted(batch.partition, generation)
            self.books.evict_clean()
        self.last_seconds = {step: seconds[step] for step in STEPS}

    async def _store_rows(self, batches: list[PartitionBatch], seconds: dict[str, float]) -> None:
        """Steps 2 and 3: the retractions join the batches' rows before the insert."""
        with _timed(seconds, "reconcile"):
            await self.reconcile(batches)
        with _timed(seconds, "rows"):
            await self.rows.write(batches)

    def _snapshot(self, batches: list[PartitionBatch]) -> tuple[int, dict[int, dict[str, bytes]]]:
        """Step 1: the batches' rows built, and the state to write (books and clocks)."""
        for batch in batches:
            batch.seal()
        generation, books = self.books.snapshot(b.partition for b in batches)
        state = {
            b.partition: {**books[b.partition], clock_key(b.partition): self._clock(b.partition)}
            for b in batches
        }
        return generation, state

    def _clock(self, partition: int) -> bytes:
        return str(self.clock_of(partition)).encode()

    def _records(self, batches: list[PartitionBatch]) -> list[Record]:
        records = [record for batch in batches for record in batch.messages]
        scores = self.topics.scores
        records += [Record(scores, key, body) for b in batches for key, body in b.scores.items()]
        return records


@contextlib.contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        seconds[step] = time.monotonic() - started


async def _timed_await(seconds: dict[str, float], step: str, work: Awaitable[Any]) -> None:
    with _timed(seconds, step):
        await work


async def _together(*steps: Awaitable[None]) -> None:
    """Run `steps` concurrently; if one fails (or this is cancelled), cancel the others and
    wait for them to end, then raise: no step outlives the checkpoint that ran it."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
