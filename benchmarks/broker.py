"""The benchmark's own Kafka: a local broker in a temp dir, topics, producers, lag.

Every measured run gets fresh topics, so runs never read each other's events.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

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


@dataclass
class Sent:
    """What the fixed-rate sender sent: per event_id, when and where (a re-sent event keeps
    its first send)."""

    at: dict[str, float] = field(default_factory=dict)
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)


def send_at_rate(
    bootstrap: str, topic: str, messages: Iterable[Message], rate: float, ticks_per_s: int = 100
) -> Sent:
    """Send messages at a fixed rate, each stamped with its send time (epoch seconds).

    Sleeps only when ahead of schedule by more than a tick, so messages go in small bursts
    and the average rate holds even when one tick is slow.
    """
    sender = producer(bootstrap, linger_ms=2)
    sent, futures = Sent(), []
    started = time.monotonic()
    try:
        for number, (key, value) in enumerate(messages, start=1):
            delay = started + number / rate - time.monotonic()
            if delay > 1 / ticks_per_s:
                time.sleep(delay)
            now = time.time()
            body, event_id = stamped(value, now)
            future = sender.send(topic, key=key, value=body)
            if event_id is not None and event_id not in sent.at:
                sent.at[event_id] = now
                futures.append((event_id, future))
        sender.flush()
    finally:
        sender.close()
    for event_id, future in futures:
        metadata = future.get(timeout=30)
        sent.positions[event_id] = (metadata.partition, metadata.offset)
    return sent


class CommitWatcher(threading.Thread):
    """Polls the committed offsets of `topic` (any group) every `interval` seconds, so the
    moment each message was committed can be read afterwards (`polls`: epoch time and
    committed offset per partition, the next offset to read, as Kafka commits it)."""

    def __init__(self, bootstrap: str, topic: str, interval: float = 0.1):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.interval = bootstrap, topic, interval
        self.polls: list[tuple[float, dict[int, int]]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    groups = [group["group_id"] for group in admin.list_groups()]
                    offsets = admin.list_group_offsets(groups) if groups else {}
                except KafkaError:
                    continue
                committed: dict[int, int] = {}
                for group_offsets in offsets.values():
                    for tp, meta in group_offsets.items():
                        if tp.topic == self.topic:
                            committed[tp.partition] = max(committed.get(tp.partition, -1),
                                                          meta.offset)  # fmt: skip
                self.polls.append((time.time(), committed))
        finally:
            admin.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def topic_sizes(bootstrap: str) -> dict[str, int]:
    """Messages in every topic (sum of end offsets), to count what a run produced."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in consumer.topics()
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        sizes: dict[str, int] = {}
        for tp, offset in consumer.end_offsets(partitions).items():
            sizes[tp.topic] = sizes.get(tp.topic, 0) + offset
        return sizes
    finally:
        consumer.close()


class LagProbe:
    """Reads consumer-group progress; one admin and one consumer client for many polls."""

    def __init__(self, bootstrap: str):
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap)

    def read(self, topic: str) -> tuple[int, int] | None:
        """(messages of `topic` committed by its consumer group, that group's lag over every
        topic it reads), or None when the broker cannot say right now (coordinator loading).
        The lag covers the worker's internal (re-keyed) topic too, so zero means the whole
        pipeline has caught up, not only its first stage; one message per partition of an
        internal topic is not lag: a caught-up worker sends its idle partitions a clock tick
        there every few seconds (`pipeline/stream/ticks.py`), consumed a moment later."""
        try:
            groups = [group["group_id"] for group in self.admin.list_groups()]
            offsets = self.admin.list_group_offsets(groups) if groups else {}
            committed_on_topic, lag = 0, 0
            for committed in offsets.values():
                if not any(tp.topic == topic for tp in committed):
                    continue  # another run's group (a cut-off baseline keeps its lag)
                ends = self.consumer.end_offsets(list(committed))
                lag += sum(
                    max(ends.get(tp, 0) - meta.offset - (tp.topic != topic), 0)
                    for tp, meta in committed.items()
                )
                committed_on_topic += sum(
                    meta.offset for tp, meta in committed.items() if tp.topic == topic
                )
            return committed_on_topic, lag
        except (KafkaError, KeyError):
            # KeyError: kafka-python's end_offsets on a partition whose metadata it has not
            # seen yet (the worker has just created its re-keyed topic); ask again.
            return None

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def wait_caught_up(
    bootstrap: str, topic: str, timeout: float, settle: float = 3.0,
    alive: Callable[[], bool] = lambda: True, progress: list[tuple[float, int]] | None = None,
    stall: float = 90.0,
) -> bool:  # fmt: skip
    """Wait until `topic` is committed to its end and no group lags (twice, `settle` apart);
    False at the timeout or as soon as the consumer under test is no longer `alive`.
    Appends (monotonic time, committed messages of `topic`) to `progress` at each poll."""
    deadline = time.monotonic() + timeout
    total = sum(end_offsets(bootstrap, topic).values())
    probe = LagProbe(bootstrap)
    try:
        return _wait(probe, topic, total, deadline, settle, alive, progress, stall)
    finally:
        probe.close()


def _wait(
    probe: LagProbe, topic: str, total: int, deadline: float, settle: float,
    alive: Callable[[], bool], progress: list[tuple[float, int]] | None, stall: float,
) -> bool:  # fmt: skip
    quiet_since: float | None = None
    moved_at, last = time.monotonic(), -1
    while time.monotonic() < deadline and alive():
        reading = probe.read(topic)
        if reading is None:
            time.sleep(0.5)
            continue
        committed, lag = reading
        if progress is not None:
            progress.append((time.monotonic(), committed))
        if committed != last:
            moved_at, last = time.monotonic(), committed
        elif time.monotonic() - moved_at > stall:
            return False  # no commit for `stall` seconds: stuck (a crashed agent), not slow
        if committed >= total and lag == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        time.sleep(0.5)
    return False
