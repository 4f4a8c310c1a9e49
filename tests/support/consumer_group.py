"""A consumer group's progress as the broker sees it: committed offsets against end offsets.

Several workers share one group, so no one worker's metrics say when the group is done; the
offsets the group committed do, and a worker commits only after ClickHouse acknowledged
what it derived from them (`pipeline.stream.checkpoint`). Polled, never slept on.
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


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (the next one to read)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def wait_committed_to_end(
    bootstrap: str, group: str, topic: str, timeout: float,
    alive: Callable[[], bool] = lambda: True,
) -> dict[int, int]:  # fmt: skip
    """Wait until `group` committed every partition of `topic` to its end; the offsets.
    Raises at the timeout, or at once when the consumers are no longer `alive`."""
    ends = end_offsets(bootstrap, topic)
    deadline, last = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        assert alive(), "the group's workers stopped before it caught up"
        try:
            last = committed(bootstrap, group, topic)
        except KafkaError:  # the coordinator is moving or loading: ask again
            last = {}
        if all(last.get(partition, 0) >= end for partition, end in ends.items()):
            return last
        time.sleep(0.25)
    raise AssertionError(f"group {group} never committed {topic} to its end {ends}: {last}")


class GroupOffsets:
    """One group's committed offsets and the topics' end offsets, through clients kept open
    while a test polls them (a client per question cost a loaded machine a second each)."""

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
