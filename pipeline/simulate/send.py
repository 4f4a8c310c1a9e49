"""Where simulated messages go: a Kafka topic, or JSON Lines (a file or stdout)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO, Any

from pipeline.simulate.faults import Delivery
from pipeline.simulate.pacing import Pacer

Progress = Callable[[int], None]


def write_lines(
    deliveries: Sequence[Delivery], stream: IO[bytes], pacer: Pacer, progress: Progress
) -> int:
    """One message per line, as sent (malformed ones included, byte for byte)."""
    for index, item in enumerate(deliveries):
        pacer.wait_for(index, item.sent_at)
        # A malformed message may hold a raw newline-free fragment; never a newline, since
        # orjson escapes them, so one line stays one message.
        stream.write(item.value + b"\n")
        progress(1)
    stream.flush()
    return len(deliveries)


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int, **options: Any) -> None:
    """Create the topic with the configured partitions unless it exists (auto-creation would
    give it the broker's default of one partition, capping the worker's parallelism)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, **options)
    try:
        if topic not in admin.list_topics():
            admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def send_to_kafka(
    deliveries: Sequence[Delivery],
    bootstrap_servers: str,
    topic: str,
    pacer: Pacer,
    progress: Progress,
    **options: Any,
) -> int:
    """Produce every message (idempotent producer, all acks); return how many were acked."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
        **options,
    )
    acked = 0

    def on_ack(_: Any) -> None:
        nonlocal acked
        acked += 1
        progress(1)

    try:
        for index, item in enumerate(deliveries):
            pacer.wait_for(index, item.sent_at)
            producer.send(topic, key=item.key, value=item.value).add_callback(on_ack)
        producer.flush()
    finally:
        producer.close()
    if acked != len(deliveries):
        raise RuntimeError(f"Kafka acknowledged {acked} of {len(deliveries)} messages to {topic}")
    return acked
