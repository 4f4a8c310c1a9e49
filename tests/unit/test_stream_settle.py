"""The intake leaves each journey's catch-up to the checkpoint (`Runtime._settle`): every
checkpoint, also one the timer starts with no fetch after the input, holds the catch-ups
its input caused, in the batches of their partitions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.contract import Touchpoint, encode_touchpoint
from pipeline.stream.sink import PartitionBatch
from tests.support.runtime_rig import TOPIC, RuntimeRig, fetch, record

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def event(event_id: str, hours: float, journey_id: str, kind: str = "contact",
          **attributes: Any) -> bytes:  # fmt: skip
    return encode_touchpoint(Touchpoint(
        event_id=event_id, occurred_at=AT + timedelta(hours=hours), customer_id=journey_id,
        department="maintenance", type=kind, journey_id=journey_id, attributes=attributes,
    ))  # fmt: skip


def test_a_checkpoint_the_timer_starts_holds_the_catch_ups_its_input_caused(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory()
    due = (AT + timedelta(hours=4)).isoformat()
    promise = event("p1", 0, "J1", "promise_made", promise_id="p1", due_at=due)
    rig.deliver([record(TOPIC, 0, 0, promise)])
    # Another journey's event, in a later fetch, moves the clock past J1's promise.
    rig.deliver([record(TOPIC, 0, 1, event("x1", 5, "J2"))])
    runtime = rig.runtime
    assert runtime.processor.unsettled() == [0]  # left to the checkpoint
    taken: list[PartitionBatch] = []

    async def commit(batches: list[PartitionBatch], snapshotted: Callable[[], object]) -> None:
        for batch in batches:
            batch.seal()
        taken.extend(batches)
        snapshotted()

    runtime.checkpoint.commit = commit  # type: ignore[method-assign,assignment]

    async def flushed() -> None:
        runtime.start_flush()  # as the timer does: the sink due, no fetch after the input
        assert runtime._flush is not None
        await runtime._flush

    asyncio.run(flushed())
    assert runtime.processor.unsettled() == []
    (batch,) = taken
    broken = [(s["journey_id"], s["active"]) for s in batch.rows["journey_signals"]
              if s["signal"] == "promise_broken"]  # fmt: skip
    assert broken == [("J1", 1)]
    assert any(record.topic == "alerts" for record in batch.messages)
    assert batch.next_offsets() == {(TOPIC, 0): 2}


def test_fetches_while_a_checkpoint_runs_leave_their_catch_ups_to_the_next_one(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    """Under a backlog the sink is due at every fetch while the last checkpoint runs; the
    intake settles only as a checkpoint can start, so a journey with events in many of
    those fetches is caught up once."""
    rig = runtime_factory()
    runtime = rig.runtime
    runtime.sink.flush_rows = 1  # due after every fetch
    started: list[int] = []
    runtime.start_flush = lambda: started.append(1)  # type: ignore[method-assign]

    async def deliver_while_running() -> None:
        running = asyncio.get_running_loop().create_future()
        runtime._flush = running  # a checkpoint still running
        await runtime.handle(fetch([record(TOPIC, 0, 0, event("a1", 0, "J1"))]))
        await runtime.handle(fetch([record(TOPIC, 0, 1, event("a2", 1, "J1"))]))
        assert runtime.processor.unsettled() == [0] and started == []
        running.set_result(None)  # it ended: the next fetch settles and starts one
        await runtime.handle(fetch([record(TOPIC, 0, 2, event("a3", 2, "J1"))]))

    asyncio.run(deliver_while_running())
    assert runtime.processor.unsettled() == [] and started == [1]
