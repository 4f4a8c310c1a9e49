"""Idle ticks go only to partitions whose input is all processed.

A partition just assigned (a rebalance, a restart) is fetched before it is processed: a
fetch can reach the partition's end at once, so the consumer's position says "caught up"
while the backlog waits in the fetch. A tick then would move the partition's clock to
the wall clock before the backlog's events, firing their journeys' deadlines early. The
consumer here is a stand-in holding what Faust's would report (no broker runs in unit
tests); the runtime, its metrics and the tick function are the worker's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from faust.types import TP

from pipeline.contract import Touchpoint, encode_touchpoint
from pipeline.settings import Settings
from pipeline.stream.ticks import tick_idle_partitions
from pipeline.stream.worker import partitioner
from tests.support.runtime_rig import TOPIC, RuntimeRig, record

PARTITION = TP(TOPIC, 0)


class Consumer:
    """What Faust's consumer reports of a partition fetched to its end (`highwater`) after
    an assignment at a committed offset (Faust keeps None for 0 or none)."""

    def __init__(self, highwater: int, committed: int | None) -> None:
        self._highwater = highwater
        self._committed_offset: dict[Any, int | None] = {PARTITION: committed}

    def assignment(self) -> set[Any]:
        return {PARTITION}

    def highwater(self, tp: Any) -> int:
        return self._highwater

    async def position(self, tp: Any) -> int:
        return self._highwater  # the fetch position: past what is not processed yet


class App:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer


class Routed:
    def __init__(self) -> None:
        self.ticks: list[int | None] = []

    async def send(self, *, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.ticks.append(partition)


def ticked(rig: RuntimeRig, highwater: int = 10, committed: int | None = 4) -> list[int | None]:
    routed, app = Routed(), App(Consumer(highwater, committed))
    settings = Settings(topic_touchpoints=TOPIC, clock_idle_seconds=1)
    asyncio.run(tick_idle_partitions(app, rig.runtime, routed, settings, rig.metrics))
    return routed.ticks


def test_a_partition_fetched_but_not_processed_gets_no_tick(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory()
    assert ticked(rig) == []
    assert rig.metrics.consumer_lag == {"0": 6}
    assert ticked(rig, committed=None) == []  # nothing committed: all ten are waiting


def test_a_partition_processed_to_its_end_gets_its_tick(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory()
    rig.runtime.next_offset[0] = 10  # what `Runtime.handle` notes of each record taken
    assert ticked(rig) == [0]
    assert rig.metrics.consumer_lag == {"0": 0}


def test_an_empty_partition_never_committed_gets_its_tick(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    assert ticked(runtime_factory(), highwater=0, committed=None) == [0]


def test_a_partition_gets_no_tick_while_an_event_re_keyed_to_it_is_unsent(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    # Partition 1 took an event of a journey that lives on partition 0: it goes to the
    # routed topic's partition 0 at partition 1's checkpoint. A tick sent before it would
    # fire the journey's deadlines before the event (a promise it keeps, reported broken).
    rig = runtime_factory(partitions=2)
    place = partitioner(2)
    journey = next(j for n in range(1000) if place(j := f"J{n}") == 0)
    rig.deliver([record(TOPIC, 1, 0, encode_touchpoint(Touchpoint(
        event_id="E1", occurred_at=datetime.now(UTC) - timedelta(days=1), customer_id="C1",
        journey_id=journey, department="sales", type="contact",
    )), key=b"C1")])  # fmt: skip
    assert rig.metrics.counts["rerouted"] == 1
    rig.runtime.next_offset[0] = 10  # partition 0 itself processed to its end
    assert ticked(rig) == []
    rig.runtime.sink.take()  # a checkpoint sent it (and ended)
    assert ticked(rig) == [0]
