"""The flush's batch sender against a real broker: order, placement, offsets, big flushes."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.stream.outbox import Outbox, Record, partition_of
from pipeline.stream.producer_thread import ProducerThread
from tests.support.kafka import consume, create_topic

PARTITIONS = 3


async def send(bootstrap: str, records: list[Record]) -> dict[tuple[str, int], int]:
    # The worker's producer settings: idempotent, acks from all replicas, small batches.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, max_batch_size=16384
    )
    await producer.start()
    try:
        return await Outbox(lambda: producer).send(records)
    finally:
        await producer.stop()


def test_outbox_places_keyed_records_by_key_in_order_across_many_batches(
    bootstrap_servers: str, unique_name: str
) -> None:
    create_topic(bootstrap_servers, unique_name, PARTITIONS)
    # 3,000 records of 500 bytes: about a hundred producer batches of 16 KiB.
    records = [
        Record(unique_name, f"journey-{n % 40}".encode(), f"{n:06d}".encode() + b"x" * 494)
        for n in range(3000)
    ]
    offsets = asyncio.run(send(bootstrap_servers, records))
    stored = consume(bootstrap_servers, unique_name)
    assert len(stored) == len(records)
    for record in stored:
        assert record.partition == partition_of(record.key, PARTITIONS)
    for key in {r.key for r in records}:
        sent = [r.value for r in records if r.key == key]
        assert [r.value for r in stored if r.key == key] == sent  # order kept per key
    per_partition = {p: sum(1 for r in stored if r.partition == p) for p in range(PARTITIONS)}
    assert offsets == {(unique_name, p): n - 1 for p, n in per_partition.items() if n}


def test_outbox_honours_explicit_partitions_spreads_unkeyed_and_keeps_headers(
    bootstrap_servers: str, unique_name: str
) -> None:
    create_topic(bootstrap_servers, unique_name, PARTITIONS)
    pinned = [Record(unique_name, b"k", b"pinned", partition=2) for _ in range(5)]
    loose = [Record(unique_name, None, b"loose", headers=(("reason", b"why"),)) for _ in range(9)]
    asyncio.run(send(bootstrap_servers, pinned + loose))
    stored = consume(bootstrap_servers, unique_name)
    assert {r.partition for r in stored if r.value == b"pinned"} == {2}
    unkeyed = [r for r in stored if r.value == b"loose"]
    assert len(unkeyed) == 9 and {r.partition for r in unkeyed} == {0, 1, 2}
    assert all(dict(r.headers) == {"reason": b"why"} for r in unkeyed)
    assert asyncio.run(send(bootstrap_servers, [])) == {}


def test_the_worker_s_outbox_sends_on_its_producer_thread_and_stops(
    bootstrap_servers: str, unique_name: str
) -> None:
    """The worker's outbox: each send runs on the loop of the producer's own thread (not
    the caller's), its offsets come back to the caller, and after the stop the thread is
    gone and a send is refused rather than lost."""
    create_topic(bootstrap_servers, unique_name, PARTITIONS)
    loops: list[asyncio.AbstractEventLoop] = []

    def new_producer() -> AIOKafkaProducer:
        loops.append(asyncio.get_running_loop())
        return AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True
        )

    records = [Record(unique_name, f"k{n}".encode(), f"v{n}".encode()) for n in range(200)]

    async def run() -> tuple[dict[tuple[str, int], int], asyncio.AbstractEventLoop]:
        thread = ProducerThread(new_producer, name="test-producer")
        await thread.start()
        assert [t.name for t in threading.enumerate()].count("test-producer") == 1
        try:
            offsets = await Outbox(lambda: thread.producer, thread.run).send(iter(records))
        finally:
            await thread.stop(10.0)
        assert "test-producer" not in [t.name for t in threading.enumerate()]
        with pytest.raises(RuntimeError, match="not running"):
            await Outbox(lambda: thread.producer, thread.run).send(records[:1])
        return offsets, asyncio.get_running_loop()

    offsets, caller_loop = asyncio.run(run())
    assert len(loops) == 1 and loops[0] is not caller_loop
    stored = consume(bootstrap_servers, unique_name)
    assert sorted(r.value for r in stored) == sorted(r.value for r in records)
    per_partition = {p: sum(1 for r in stored if r.partition == p) for p in range(PARTITIONS)}
    assert offsets == {(unique_name, p): n - 1 for p, n in per_partition.items() if n}
