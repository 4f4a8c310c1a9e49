"""The demo's "is everything processed?" reads Kafka's committed offsets correctly."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.simulate.backlog import Backlog, delete_topics
from pipeline.simulate.send import ensure_topic


def test_backlog_counts_committed_against_end_offsets(
    bootstrap_servers: str, unique_name: str
) -> None:
    ensure_topic(bootstrap_servers, unique_name, 2)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers)
    for i in range(10):
        producer.send(unique_name, value=b"x", partition=i % 2)
    producer.flush()
    producer.close()

    backlog = Backlog(bootstrap_servers, unique_name, [unique_name])
    try:
        assert (backlog.state().processed, backlog.state().total) == (0, 10)
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=unique_name, enable_auto_commit=False
        )
        consumer.commit({TopicPartition(unique_name, 0): OffsetAndMetadata(5, "", -1)})
        assert backlog.state().remaining == 5
        consumer.commit({TopicPartition(unique_name, 1): OffsetAndMetadata(5, "", -1)})
        assert backlog.state().remaining == 0
        consumer.close()
    finally:
        backlog.close()

    assert delete_topics(bootstrap_servers, [unique_name, "no-such-topic"]) == [unique_name]
