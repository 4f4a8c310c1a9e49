"""The checkpoint's protocol, pinned with fakes: its steps run in one order, and a failure
at any step leads to a replay that loses nothing and counts nothing twice.

The fakes keep what a real worker keeps durably (rows by insert token, sent messages, the
state table, the committed offset) in a `World`; a crashed worker loses everything else.
A restarted worker recovers its state from the world and reads from the committed offset,
as the real one does; events already in the state are duplicates and produce nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from pipeline.stream.checkpoint import STEPS, Checkpoint
from pipeline.stream.outbox import Record
from pipeline.stream.sink import PartitionBatch
from pipeline.stream.topics import TopicNames

TOPIC = "touchpoints"
NAMES = TopicNames(routed="routed", dead_letters="dlq", scores="scores", alerts="alerts")
# 12 events over 3 keys; a worker takes them 4 at a time, a checkpoint after each take.
EVENTS = [(offset, f"k{offset % 3}", f"e{offset}") for offset in range(12)]
TAKE = 4


class Crash(RuntimeError):
    """The process died in the middle of a step."""


@dataclass
class World:
    """What survives a crash."""

    rows: dict[str, list[str]] = field(default_factory=dict)  # insert token -> event ids
    messages: list[bytes] = field(default_factory=list)
    state: dict[str, frozenset[str]] = field(default_factory=dict)  # key -> event ids
    committed: int = 0
    calls: list[str] = field(default_factory=list)

    def stored_event_ids(self) -> list[str]:
        return sorted(e for rows in self.rows.values() for e in rows)


class FakeBooks:
    """The slice of `BookCache` a checkpoint uses, over sets of event ids."""

    def __init__(self, recovered: dict[str, frozenset[str]]) -> None:
        self.books = {key: set(ids) for key, ids in recovered.items()}
        self.dirty: dict[str, int] = {}
        self.generation = 0

    def add(self, key: str, event_id: str) -> bool:
        book = self.books.setdefault(key, set())
        if event_id in book:
            return False
        book.add(event_id)
        self.dirty[key] = self.generation
        return True

    def snapshot(self, partitions: Iterable[int]) -> tuple[int, dict[int, dict[str, bytes]]]:
        list(partitions)
        generation, self.generation = self.generation, self.generation + 1
        encoded = {key: ",".join(sorted(self.books[key])).encode() for key in self.dirty}
        return generation, {0: encoded}

    def persisted(self, partition: int, generation: int) -> None:
        self.dirty = {k: g for k, g in self.dirty.items() if g > generation}

    def evict_clean(self) -> None:
        pass


class Collaborators:
    """Rows, messages, state and offsets writing into the world; one step may crash."""

    def __init__(self, world: World, crash_at: str | None) -> None:
        self.world = world
        self.crash_at = crash_at

    def _step(self, name: str) -> None:
        self.world.calls.append(name)
        if name == self.crash_at:
            raise Crash(name)

    async def reconcile(self, batches: list[PartitionBatch]) -> None:
        self._step("reconcile")

    async def write(self, batches: list[PartitionBatch]) -> None:
        self._step("rows")
        for batch in batches:
            # A retried insert with a token ClickHouse has seen is dropped there.
            self.world.rows.setdefault(batch.ranges(), list(batch.rows.get("touchpoints", [])))

    async def send(self, records: Iterable[Record]) -> dict[tuple[str, int], int]:
        self._step("messages")
        self.world.messages.extend(record.value for record in records)
        return {}

    async def persist(self, state: dict[int, dict[str, bytes]]) -> None:
        self._step("state")
        for key, raw in state[0].items():
            if not key.startswith("\x00clock"):
                self.world.state[key] = frozenset(raw.decode().split(","))

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> bool:
        self._step("offsets")
        self.world.committed = offsets[(TOPIC, 0)]
        return True

    def checkpoint(self, books: FakeBooks) -> Checkpoint:
        """A checkpoint over `books` whose every step is one of these collaborators'."""
        return Checkpoint(
            books=books,  # type: ignore[arg-type]
            clock_of=lambda partition: 0,
            reconcile=self.reconcile,
            rows=self,
            messages=self,
            state=self,
            commit_offsets=self.commit_offsets,
            topics=NAMES,
        )


def run_worker(world: World, crash_at: str | None = None, crash_on: int = 2) -> None:
    """A worker from the committed offset to the end; `crash_at` fails on checkpoint `crash_on`."""
    books = FakeBooks(world.state)
    checkpoints = 0
    position = world.committed
    while position < len(EVENTS):
        taken = EVENTS[position : position + TAKE]
        batch = PartitionBatch(0)
        batch.add(TOPIC, taken[0][0], taken[-1][0], len(taken))
        for _, key, event_id in taken:
            if books.add(key, event_id):  # a replayed event already in the state: nothing
                batch.rows.setdefault("touchpoints", []).append(event_id)  # type: ignore[arg-type]
                batch.messages.append(Record(NAMES.alerts, key.encode(), event_id.encode()))
        checkpoints += 1
        fakes = Collaborators(world, crash_at if checkpoints == crash_on else None)
        checkpoint = fakes.checkpoint(books)
        asyncio.run(checkpoint.commit([batch]))
        position += len(taken)


def test_a_checkpoint_stores_rows_then_messages_then_state_then_commits() -> None:
    world = World()
    run_worker(world)
    one = ["reconcile", "rows", "messages", "state", "offsets"]
    assert world.calls == one * (len(EVENTS) // TAKE)
    assert [s for s in STEPS if s in one] == one  # the documented order is the one run


@pytest.mark.parametrize("crash_at", ["reconcile", "rows", "messages", "state", "offsets"])
def test_a_failure_at_any_step_is_replayed_without_loss_or_double_count(crash_at: str) -> None:
    world = World()
    with pytest.raises(Crash):
        run_worker(world, crash_at=crash_at)
    assert world.committed == TAKE  # the failed checkpoint committed nothing
    run_worker(world)  # the restart: recovered state, from the committed offset

    every_id = sorted(event_id for _, _, event_id in EVENTS)
    assert world.committed == len(EVENTS)
    assert world.stored_event_ids() == every_id  # each row stored, and once
    assert sorted(set(m.decode() for m in world.messages)) == every_id  # at least once
    assert sorted(e for ids in world.state.values() for e in ids) == every_id


def test_the_snapshot_leaves_the_event_loop_free_and_then_lets_input_in() -> None:
    """Step 1 (rows built, books encoded) runs off the event loop, so the worker's web
    views answer meanwhile: here the snapshot cannot finish until a coroutine on the loop
    has run. `snapshotted` (the runtime's intake reopening) is called once it is taken,
    before the rows are written."""
    world = World()
    books = FakeBooks({})
    books.add("k0", "e0")
    loop_ran = threading.Event()
    order: list[str] = []
    take_snapshot = books.snapshot

    def snapshot(partitions: Iterable[int]) -> tuple[int, dict[int, dict[str, bytes]]]:
        if not loop_ran.wait(10):  # a deadlock guard, not a timing: the loop never ran
            raise AssertionError("the snapshot held the event loop")
        order.append("snapshot")
        return take_snapshot(partitions)

    books.snapshot = snapshot  # type: ignore[method-assign]
    fakes = Collaborators(world, None)
    original_write = fakes.write

    async def write(batches: list[PartitionBatch]) -> None:
        order.append("rows")
        await original_write(batches)

    fakes.write = write  # type: ignore[method-assign]
    checkpoint = fakes.checkpoint(books)
    batch = PartitionBatch(0)
    batch.add(TOPIC, 0, 0, 1)

    async def run() -> None:
        commit = asyncio.create_task(
            checkpoint.commit([batch], lambda: order.append("snapshotted"))
        )
        await asyncio.sleep(0)  # the checkpoint starts and reaches its snapshot
        loop_ran.set()
        await commit

    asyncio.run(run())
    assert order == ["snapshot", "snapshotted", "rows"]
    assert world.committed == 1 and world.state == {"k0": frozenset({"e0"})}


def test_rows_and_messages_run_together_and_both_end_before_the_state() -> None:
    """Steps 2-3 (ClickHouse) and 4 (Kafka) overlap: here the insert cannot finish until
    the messages are being sent, and the send cannot finish until the insert has; the
    state and the offsets come only after both."""
    world = World()
    books = FakeBooks({})
    books.add("k0", "e0")
    fakes = Collaborators(world, None)
    sending, stored = asyncio.Event(), asyncio.Event()
    write, send = fakes.write, fakes.send

    async def slow_write(batches: list[PartitionBatch]) -> None:
        await asyncio.wait_for(sending.wait(), 10)  # a deadlock guard: the send never began
        await write(batches)
        world.calls.append("rows stored")
        stored.set()

    async def slow_send(records: Iterable[Record]) -> dict[tuple[str, int], int]:
        sending.set()
        await asyncio.wait_for(stored.wait(), 10)
        sent = await send(records)
        world.calls.append("messages sent")
        return sent

    fakes.write, fakes.send = slow_write, slow_send  # type: ignore[method-assign]
    batch = PartitionBatch(0)
    batch.add(TOPIC, 0, 0, 1)
    asyncio.run(fakes.checkpoint(books).commit([batch]))
    assert world.calls == [
        "reconcile", "rows", "rows stored", "messages", "messages sent", "state", "offsets"
    ]  # fmt: skip
    assert world.committed == 1


def test_a_failed_insert_stops_the_send_and_commits_nothing() -> None:
    """The insert fails while the messages are still being sent: the send is cancelled
    (it does not outlive its checkpoint), the failure is raised as it is, and neither the
    state nor the offsets are written."""
    world = World()
    books = FakeBooks({})
    books.add("k0", "e0")
    fakes = Collaborators(world, "rows")
    sending = asyncio.Event()
    cancelled: list[bool] = []

    async def hanging_send(records: Iterable[Record]) -> dict[tuple[str, int], int]:
        sending.set()
        try:
            await asyncio.sleep(5)  # not cancelled: it ends, and the check below fails
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return {}

    write = fakes.write

    async def failing_write(batches: list[PartitionBatch]) -> None:
        await asyncio.wait_for(sending.wait(), 10)
        await write(batches)  # raises Crash

    fakes.write, fakes.send = failing_write, hanging_send  # type: ignore[method-assign]
    batch = PartitionBatch(0)
    batch.add(TOPIC, 0, 0, 1)
    with pytest.raises(Crash):
        asyncio.run(fakes.checkpoint(books).commit([batch]))
    assert cancelled == [True]
    assert world.calls == ["reconcile", "rows"] and world.committed == 0 and not world.state
