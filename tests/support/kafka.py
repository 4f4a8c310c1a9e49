"""The tests' Kafka: the session's local broker (fixtures) and topics in and out (helpers).

The broker is a real Apache Kafka broker (KRaft), from the jars `make jars` resolves into
the data directory, with its data in tmp. A broker that cannot start fails the tests that
need it; nothing skips. A test that stops a broker starts one of its own (`new_broker`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from pipeline.kafka import LocalBroker
from pipeline.kafka.local import free_port

REPO = Path(__file__).resolve().parents[2]
JARS_DIR = Path(os.environ.get("JOURNEYS_DATA_DIR", REPO / ".journeys")) / "kafka" / "lib"

# A keyed message as the tests send it: (key or None, value).
Message = tuple[bytes | None, bytes]


def new_broker(home: Path) -> LocalBroker:
    return LocalBroker(home, JARS_DIR, preferred_port=free_port(), heap="512m")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = new_broker(tmp_path_factory.mktemp("kafka"))
    broker.start(timeout=120)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_broker: LocalBroker) -> str:
    state = kafka_broker.state()
    assert state is not None, "the session's Kafka broker died"
    return state.bootstrap_servers


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, messages: list[Message]) -> None:
    """Send every message, acknowledged by the broker before this returns."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def consume(bootstrap: str, topic: str) -> list[Any]:
    """Every record on `topic` from the beginning (it stops after 5 s without a new one)."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=5000, enable_auto_commit=False,
    )  # fmt: skip
    records = list(consumer)
    consumer.close()
    return records
