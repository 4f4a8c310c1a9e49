"""How much of what was sent a consumer group has processed, from Kafka's own bookkeeping.

The worker commits a partition's offset only after ClickHouse acknowledged the rows of the
events before it, so "committed offset = end offset" on every partition of its input topics
means everything sent is stored. That lets the demo wait for the worker without asking it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BacklogState:
    """Per partition: the group's committed offset and the end offset."""

    committed: dict[Any, int]
    ends: dict[Any, int]

    @property
    def processed(self) -> int:
        return sum(min(self.committed.get(p, 0), end) for p, end in self.ends.items())

    @property
    def total(self) -> int:
        return sum(self.ends.values())

    @property
    def remaining(self) -> int:
        return self.total - self.processed

    def reached(self, marks: dict[Any, int]) -> bool:
        """True when every partition is committed at least up to `marks` (end offsets seen
        earlier): what was in the topic then is processed, whatever arrived since."""
        return all(self.committed.get(p, 0) >= mark for p, mark in marks.items())


def delete_topics(bootstrap_servers: str, names: Sequence[str], **options: Any) -> list[str]:
    """Delete the topics among `names` that exist (and every topic starting with a name
    ending in '-', for a worker's internal topics); return what was deleted."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, **options)
    try:
        existing = set(admin.list_topics())
        doomed = sorted(
            topic
            for topic in existing
            if topic in names or any(n.endswith("-") and topic.startswith(n) for n in names)
        )
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000)
        return doomed
    finally:
        admin.close()


class Backlog:
    """Committed versus end offsets of a consumer group over some topics."""

    def __init__(
        self, bootstrap_servers: str, group: str, topics: Sequence[str], **options: Any
    ) -> None:
        from kafka import KafkaConsumer
        from kafka.admin import KafkaAdminClient

        self.group = group
        self.topics = list(topics)
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, **options)
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, **options)

    def state(self) -> BacklogState:
        from kafka import TopicPartition

        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return BacklogState({}, {})
        ends = self._consumer.end_offsets(partitions)
        committed = {
            partition: mark.offset
            for partition, mark in self._committed().items()
            if mark is not None and mark.offset >= 0
        }
        return BacklogState(committed, dict(ends))

    def _committed(self) -> dict[Any, Any]:
        from kafka.errors import CoordinatorNotAvailableError, RetriableError

        for attempt in range(10):
            try:
                return self._fetch_committed()
            except CoordinatorNotAvailableError:
                # A fresh broker creates its offsets topic on the first group request:
                # until then no group has committed anything.
                return {}
            except RetriableError:
                # The group's coordinator moved or is loading: ask again shortly.
                if attempt == 9:
                    raise
                time.sleep(0.5)
        return {}

    def _fetch_committed(self) -> dict[Any, Any]:
        # kafka-python 3 renamed list_consumer_group_offsets(group) to
        # list_group_offsets({group: None}) -> {group: offsets}.
        if hasattr(self._admin, "list_group_offsets"):
            found = self._admin.list_group_offsets({self.group: None})
            return dict(found.get(self.group, {}))
        return dict(self._admin.list_consumer_group_offsets(self.group))

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()
