"""A consumer group's progress as the broker sees it: committed offsets against end offsets.

No worker's metrics say when everything is stored (several workers may share the group,
and a running checkpoint is neither buffered nor stored); the offsets the group committed
do: a worker commits only after ClickHouse acknowledged what it derived from them and the
broker what it sent (`pipeline.stream.checkpoint`). Polled, never slept on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


class GroupOffsets:
    """One group's committed offsets and the topics' end offsets, through one admin client
    and one consumer kept open while a test polls them."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.group = group
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap)

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()

    def ends(self, topic: str) -> dict[int, int]:
        partitions = [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic)
                      or ()]  # fmt: skip
        return {tp.partition: end for tp, end in self.consumer.end_offsets(partitions).items()}

    def committed(self, topic: str) -> dict[int, int]:
        """The next offset to read per partition of `topic`; {} while the coordinator moves."""
        try:
            offsets = self.admin.list_group_offsets(self.group).get(self.group, {})
        except KafkaError:
            return {}
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}

    def reached(self, topic: str, ends: dict[int, int]) -> bool:
        committed = self.committed(topic)
        return bool(ends) and all(committed.get(p, 0) >= end for p, end in ends.items())


def wait_stored(
    bootstrap: str, group: str, source: str, routed: str, timeout: float,
    alive: Callable[[], bool] = lambda: True, says: Callable[[], str] = str,
) -> None:  # fmt: skip
    """Wait until `group` stored everything on `source` (the touchpoints topic), events it
    re-keyed through `routed` included: `source` committed to its end, then `routed` to the
    end it had by then. A worker commits its input after sending what it derived (the
    re-keyed events among it) and storing the rows (`pipeline.stream.checkpoint`), so once
    `source` is committed every re-keyed event is on `routed`, below the end read after.

    `source` alone is not enough: a stop after it stores and sends what it took but reads
    no more, and the events it re-keyed last wait on `routed` for the next start.
    Raises at the timeout (with `says()`), or at once when the consumers are not `alive`.
    """
    offsets, deadline = GroupOffsets(bootstrap, group), time.monotonic() + timeout
    try:
        for topic in (source, routed):
            ends = offsets.ends(topic)
            while not offsets.reached(topic, ends):
                assert alive(), f"the group's workers stopped before it stored {topic}\n{says()}"
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"group {group} never committed {topic} to {ends}: "
                        f"{offsets.committed(topic)}\n{says()}"
                    )
                time.sleep(0.25)
    finally:
        offsets.close()
