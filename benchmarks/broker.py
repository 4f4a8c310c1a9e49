"""The benchmark's own Kafka: a local broker in a temp dir, topics, producers, lag.

Every measured run gets fresh topics, so runs never read each other's events.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from benchmarks.events import Message, stamped
from pipeline.kafka import LocalBroker
from pipeline.kafka.local import free_port

REPO = Path(__file__).resolve().parents[1]
JARS_DIR = Path(os.environ.get("JOURNEYS_DATA_DIR", REPO / ".journeys")) / "kafka" / "lib"


@contextlib.contextmanager
def local_broker(home: Path) -> Iterator[str]:
    """A real Apache Kafka broker for the suite; yields its bootstrap servers."""
    broker = LocalBroker(home, JARS_DIR, preferred_port=free_port(), heap="768m")
    state = broker.start(timeout=180)
    try:
        yield state.bootstrap_servers
    finally:
        broker.stop()


def create_topic(bootstrap: str, partitions: int, prefix: str = "bench") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def producer(bootstrap: str, linger_ms: int = 20) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=linger_ms,
        batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
    )


def preload(bootstrap: str, topic: str, messages: Iterable[Message]) -> int:
    """Send messages as fast as the client goes, before the consumer under test starts."""
    sender = producer(bootstrap, linger_ms=50)
    count = 0
    try:
        for key, value in messages:
            sender.send(topic, key=key, value=value)
            count += 1
        sender.flush()
    finally:
        sender.close()
    return count


def send_at_rate(
    bootstrap: str, topic: str, messages: Iterable[Message], rate: float, ticks_per_s: int = 100
) -> dict[str, float]:
    """Send messages at a fixed rate, each stamped with its send time. Returns event_id ->
    send time (epoch seconds; a re-sent event keeps its first).

    Sleeps only when ahead of schedule by more than a tick, so messages go in small bursts
    and the average rate holds even when one tick is slow.
    """
    sender = producer(bootstrap, linger_ms=2)
    sent: dict[str, float] = {}
    started = time.monotonic()
    try:
        for number, (key, value) in enumerate(messages, start=1):
            delay = started + number / rate - time.monotonic()
            if delay > 1 / ticks_per_s:
                time.sleep(delay)
            now = time.time()
            body, event_id = stamped(value, now)
            sender.send(topic, key=key, value=body)
            if event_id is not None:
                sent.setdefault(event_id, now)
        sender.flush()
    finally:
        sender.close()
    return sent


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def group_lag(bootstrap: str, topic: str) -> tuple[int, int]:
    """(messages of `topic` committed by its consumer group, lag over every topic any group
    reads). The second covers the worker's internal (repartition) topics too, so zero means
    the whole pipeline has caught up, not only its first stage."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        committed_on_topic, lag = 0, 0
        groups = [group["group_id"] for group in admin.list_groups()]
        for committed in admin.list_group_offsets(groups).values() if groups else ():
            if not committed:
                continue
            ends = consumer.end_offsets(list(committed))
            lag += sum(max(ends[tp] - meta.offset, 0) for tp, meta in committed.items())
            committed_on_topic += sum(m.offset for tp, m in committed.items() if tp.topic == topic)
        return committed_on_topic, lag
    finally:
        consumer.close()
        admin.close()


def wait_caught_up(
    bootstrap: str, topic: str, timeout: float, settle: float = 3.0,
    alive: Callable[[], bool] = lambda: True, progress: list[tuple[float, int]] | None = None,
) -> bool:  # fmt: skip
    """Wait until `topic` is committed to its end and no group lags (twice, `settle` apart);
    False at the timeout or as soon as the consumer under test is no longer `alive`.
    Appends (monotonic time, committed messages of `topic`) to `progress` at each poll."""
    deadline = time.monotonic() + timeout
    total = sum(end_offsets(bootstrap, topic).values())
    quiet_since: float | None = None
    while time.monotonic() < deadline and alive():
        committed, lag = group_lag(bootstrap, topic)
        if progress is not None:
            progress.append((time.monotonic(), committed))
        if committed >= total and lag == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        time.sleep(0.5)
    return False
