"""The flush's batch sender against a real broker: order, placement, offsets, big flushes."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from pipeline.stream.outbox import Outbox, Record, partition_of
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
