"""A rebalance takes partitions away while a fetch is being taken in: what the worker takes
of them after the revoke's checkpoint would be stored, written to the state table's
changelog and committed by a worker that no longer owns them, while their next owner reads
and writes the same partitions. `Runtime.revoke` stops the intake until the assignment.

The runtime is the real one (processor, books, state table on Faust's memory store, the
sink's buffers); the checkpoint's rows, messages, state and offsets are recorded, each write
yielding to the event loop as a real one does. The fetch is handed in as the intake does,
as a task, and the revoke runs at its first turn of the event loop, as Faust calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from faust.types import TP

from pipeline.contract import Touchpoint, encode_touchpoint
from pipeline.stream.outbox import Record
from pipeline.stream.sink import PartitionBatch
from pipeline.stream.worker import partitioner
from tests.support.runtime_rig import TOPIC, RuntimeRig, record

PARTITIONS = 3
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@dataclass
class Written:
    """What checkpoints wrote, in order: (partitions of the rows, the state, the offsets)."""

    rows: list[set[int]] = field(default_factory=list)
    state: list[set[int]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    async def write(self, batches: list[PartitionBatch]) -> None:
        await asyncio.sleep(0)
        self.rows.append({batch.partition for batch in batches})

    async def send(self, records: Iterable[Record]) -> Mapping[tuple[str, int], int]:
        await asyncio.sleep(0)
        return {}

    async def persist(self, state: dict[int, dict[str, bytes]]) -> None:
        await asyncio.sleep(0)
        self.state.append(set(state))

    async def commit(self, offsets: dict[tuple[str, int], int]) -> bool:
        await asyncio.sleep(0)
        self.offsets.update(offsets)
        return True


async def nothing_to_reconcile(batches: list[PartitionBatch]) -> None:
    await asyncio.sleep(0)


def recorded(rig: RuntimeRig) -> Written:
    written = Written()
    checkpoint = rig.runtime.checkpoint
    checkpoint.rows, checkpoint.messages, checkpoint.state = written, written, written
    checkpoint.commit_offsets, checkpoint.reconcile = written.commit, nothing_to_reconcile
    return written


def journey_on(partition: int) -> str:
    place = partitioner(PARTITIONS)
    return next(j for n in range(1000) if place(j := f"J{n}") == partition)


def fetch(events_per_partition: int, first_offset: int = 0) -> dict[Any, list[Any]]:
    """A fetch of every partition: contacts of one journey each, at these offsets."""
    fetched: dict[Any, list[Any]] = {}
    for partition in range(PARTITIONS):
        journey = journey_on(partition)
        fetched[TP(TOPIC, partition)] = [
            record(TOPIC, partition, offset, encode_touchpoint(Touchpoint(
                event_id=f"{journey}-{offset}", occurred_at=AT + timedelta(minutes=offset),
                customer_id="C1", journey_id=journey, department="sales", type="contact",
                attributes={"resolved": False},
            )), key=journey.encode())
            for offset in range(first_offset, first_offset + events_per_partition)
        ]  # fmt: skip
    return fetched


async def revoked_mid_fetch(rig: RuntimeRig, fetched: dict[Any, list[Any]]) -> None:
    """The intake hands the fetch over; the revoke runs at the fetch's first yield."""
    handling = asyncio.ensure_future(rig.runtime.handle(fetched))
    await asyncio.sleep(0)  # the first partition's slice is taken, then the fetch yields
    await rig.runtime.revoke(range(PARTITIONS))
    await handling


def test_nothing_taken_after_the_revoke_is_stored_or_committed_by_the_old_owner(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory(partitions=PARTITIONS)
    written = recorded(rig)

    async def scenario() -> None:
        await revoked_mid_fetch(rig, fetch(3))
        revoked_at = (len(written.rows), len(written.state), dict(written.offsets))
        await rig.runtime.flush_now()  # the timer's next checkpoint: nothing left for it
        assert (len(written.rows), len(written.state), written.offsets) == revoked_at
        assert rig.runtime.sink.buffered_events == 0

    asyncio.run(scenario())
    # The revoke's checkpoint committed what was taken before it, and nothing else: the
    # rest of the fetch is read again from there by whoever is assigned the partitions.
    assert written.offsets == {(TOPIC, 0): 3}
    assert written.state == [{0}]
    received = rig.metrics.counts["received"]
    assert received == 3  # the untaken records were not counted either


def test_after_the_assignment_the_rest_is_taken_once_from_the_committed_offsets(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory(partitions=PARTITIONS)
    written = recorded(rig)

    async def scenario() -> None:
        await revoked_mid_fetch(rig, fetch(3))
        await rig.runtime.handle(fetch(3))  # delivered before the assignment: dropped
        rig.runtime.assigned()
        again = fetch(3)  # the consumer starts each partition at its committed offset
        again[TP(TOPIC, 0)] = fetch(2, first_offset=3)[TP(TOPIC, 0)]
        await rig.runtime.handle(again)
        await rig.runtime.flush_now()

    asyncio.run(scenario())
    assert written.offsets == {(TOPIC, 0): 5, (TOPIC, 1): 3, (TOPIC, 2): 3}
    counts = rig.metrics.counts
    assert (counts["received"], counts["accepted"], counts["duplicates"]) == (11, 11, 0)
