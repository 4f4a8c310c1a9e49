"""A stop whose last checkpoint does not finish in time: it is cancelled, not left running.

The stop goes on to stop Faust's producer and consumer once `Runtime.close` returns. A
checkpoint still running then (its send waiting on a slow broker) went on when the broker
answered, reached the stopped producer (`NotReady: Producer service not yet started`) and
failed the worker: exit 1 after a clean stop. The rig's producer refuses every send once
the stop stopped it, as Faust's does, and the worker's exit codes are recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faust.types import TP

from pipeline.contract import Touchpoint, encode_touchpoint
from pipeline.stream.outbox import Record
from pipeline.stream.sink import PartitionBatch
from tests.support.runtime_rig import TOPIC, RuntimeRig, record

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@dataclass
class SlowBroker:
    """Rows are stored at once; sends wait until the broker answers (`answer`)."""

    answered: asyncio.Event = field(default_factory=asyncio.Event)
    producer_stopped: bool = False
    sent: int = 0
    committed: dict[tuple[str, int], int] = field(default_factory=dict)

    async def write(self, batches: list[PartitionBatch]) -> None:
        await asyncio.sleep(0)

    async def send(self, records: Iterable[Record]) -> Mapping[tuple[str, int], int]:
        self._producer()
        await self.answered.wait()
        self._producer()
        self.sent += 1
        return {}

    async def persist(self, state: dict[int, dict[str, bytes]]) -> None:
        self._producer()  # the state table's changelog goes through the producer too

    async def commit(self, offsets: dict[tuple[str, int], int]) -> bool:
        self.committed.update(offsets)
        return True

    def _producer(self) -> None:
        if self.producer_stopped:
            raise RuntimeError("NotReady: Producer service not yet started")


async def nothing_to_reconcile(batches: list[PartitionBatch]) -> None:
    await asyncio.sleep(0)


def fetch(count: int) -> dict[Any, list[Any]]:
    return {TP(TOPIC, 0): [
        record(TOPIC, 0, offset, encode_touchpoint(Touchpoint(
            event_id=f"J1-{offset}", occurred_at=AT + timedelta(minutes=offset),
            customer_id="C1", journey_id="J1", department="sales", type="contact",
        )), key=b"J1")
        for offset in range(count)
    ]}  # fmt: skip


def test_a_stop_cancels_its_late_checkpoint_exits_0_and_counts_what_it_held(
    runtime_factory: Callable[..., RuntimeRig], caplog: pytest.LogCaptureFixture
) -> None:
    rig = runtime_factory()
    runtime = rig.runtime
    broker = SlowBroker()
    checkpoint = runtime.checkpoint
    checkpoint.rows, checkpoint.messages, checkpoint.state = broker, broker, broker
    checkpoint.commit_offsets, checkpoint.reconcile = broker.commit, nothing_to_reconcile
    exits: list[int] = []
    runtime.stop = exits.append

    async def scenario() -> None:
        await runtime.handle(fetch(3))
        runtime.start_flush()  # the timer's checkpoint: waits on the broker
        await asyncio.sleep(0)
        with caplog.at_level(logging.WARNING, "pipeline.stream"):
            await runtime.close(0.05)  # the stop's deadline passes
        broker.producer_stopped = True  # the stop goes on: Faust stops its producer
        broker.answered.set()  # then the broker answers the old send
        await runtime.handle(fetch(5))  # a fetch still being taken in when the stop began
        runtime.start_flush()  # the flush timer's last turn
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert exits == [], "a stop that left its input to the replay is a clean stop"
    assert broker.sent == 0 and broker.committed == {}
    assert "3 taken messages are replayed at the next start" in caplog.text, caplog.text
