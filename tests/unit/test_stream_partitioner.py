"""The worker places journeys as Kafka's default partitioner does, cached or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from pipeline.stream.outbox import partition_of
from pipeline.stream.worker import partitioner


def java_default(key: bytes, partitions: int) -> int:
    """kafka-python's own murmur2 (an implementation independent of aiokafka's)."""
    return (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions


@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=30), st.integers(1, 64))
def test_partitioner_agrees_with_kafkas_default_partitioner(keys: list[str], count: int) -> None:
    place = partitioner(count)
    for key in keys + keys:  # the second time from the cache
        expected = java_default(key.encode(), count)
        assert place(key) == expected
        assert partition_of(key.encode(), count) == expected


def test_each_partition_count_has_its_own_answers() -> None:
    assert [partitioner(n)("journey-42") for n in (1, 7, 64)] == [
        java_default(b"journey-42", n) for n in (1, 7, 64)
    ]
