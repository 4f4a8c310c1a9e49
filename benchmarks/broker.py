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

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from benchmarks.mix import Event, message_key
from pipeline.kafka import LocalBroker
from pipeline.kafka.local import free_port

REPO = Path(__file__).resolve().parents[1]
JARS_DIR = Path(os.environ.get("JOURNEYS_DATA_DIR", REPO / ".journeys")) / "kafka" / "lib"
SENT_AT = "bench_sent_at"  # attribute carrying the wall-clock send time, for latency


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


def preload(bootstrap: str, topic: str, events: Iterable[Event]) -> int:
    """Send events as fast as the client goes, before the consumer under test starts."""
    sender = producer(bootstrap, linger_ms=50)
    count = 0
    try:
        for event in events:
            sender.send(topic, key=message_key(event), value=orjson.dumps(event))
            count += 1
        sender.flush()
    finally:
        sender.close()
    return count


def send_at_rate(
    bootstrap: str, topic: str, events: Iterable[Event], rate: float, ticks_per_s: int = 100
) -> dict[str, float]:
    """Send events at a fixed rate, stamping each with its send time (`bench_sent_at` in
    attributes, which the contract keeps). Returns event_id -> send time (epoch seconds).

    Sends in small bursts on a fixed schedule; a burst that falls behind is sent at once,
    so the average rate holds even when one tick is slow.
    """
    sender = producer(bootstrap, linger_ms=2)
    sent: dict[str, float] = {}
    started = time.monotonic()
    due = 0.0
    try:
        for event in events:
            due += 1
            target = started + due / rate
            delay = target - time.monotonic()
            if delay > 1 / ticks_per_s:
                time.sleep(delay)
            now = time.time()
            stamped = {**event, "attributes": {**event.get("attributes", {}), SENT_AT: now}}
            sender.send(topic, key=message_key(event), value=orjson.dumps(stamped))
            sent.setdefault(str(event.get("event_id")), now)
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
    alive: Callable[[], bool] = lambda: True,
) -> bool:  # fmt: skip
    """Wait until `topic` is committed to its end and no group lags (twice, `settle` apart);
    False at the timeout or as soon as the consumer under test is no longer `alive`."""
    deadline = time.monotonic() + timeout
    total = sum(end_offsets(bootstrap, topic).values())
    quiet_since: float | None = None
    while time.monotonic() < deadline and alive():
        committed, lag = group_lag(bootstrap, topic)
        if committed >= total and lag == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        time.sleep(0.5)
    return False
