"""Where accepted events and dead letters go: Kafka (aiokafka), or nowhere in a dry run.

`KafkaPublisher.publish` returns only once the brokers acknowledged every message of the
request (idempotent producer, acks=all), or raises `KafkaUnavailable`: the collector answers
202 only for what is durable. A request's messages are laid into one record batch per
partition by the collector itself (`send_batch`) rather than one `send` each: a future and a
coroutine per message cost aiokafka about 40 us an event, which capped the collector near
27,000 events/s; batches of a whole request reached 60,000 on the same machine
(docs/benchmarks.md). Keys are partitioned as every Kafka client's default partitioner does
(murmur2), so a journey's events share a partition whichever way they were sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2

from pipeline.collect.batch import Accepted
from pipeline.collect.dead_letters import Headers
from pipeline.collect.exceptions import KafkaUnavailable

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger("pipeline.collect")

DeadLetter = tuple[bytes, Headers]
Record = tuple[bytes | None, bytes, Headers]  # key, value, headers
# Record batches of at most this many bytes (and at most the topic's message size): large
# enough that a request of 500 touchpoints (about 150 KB) is one batch per partition.
BATCH_BYTES = 512 * 1024


class Publisher(Protocol):
    @property
    def pending(self) -> int:
        """Events handed over and not yet acknowledged."""
        ...

    async def start(self) -> None: ...

    async def publish(self, events: Sequence[Accepted], dead_letters: Sequence[DeadLetter]) -> None:
        """Return once every message is durable; raise KafkaUnavailable otherwise."""
        ...

    async def stop(self) -> None: ...


class DryRunPublisher:
    """`journeys collect --dry-run`: validate and answer, with no Kafka."""

    pending = 0

    async def start(self) -> None:
        return None

    async def publish(self, events: Sequence[Accepted], dead_letters: Sequence[DeadLetter]) -> None:
        return None

    async def stop(self) -> None:
        return None


@lru_cache(maxsize=1 << 16)  # journeys repeat; murmur2 in Python costs ~3 us a key
def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka clients' default partitioner gives `key` (partitions 0..n-1)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KafkaPublisher:
    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_touchpoints
        self.dead_letter_topic = settings.topic_dead_letters
        self.bootstrap_servers = settings.bootstrap_servers
        self.timeout = settings.collector_ack_timeout_seconds
        self.pending = 0
        self._settings = settings
        self._next_dead_letter_partition = 0
        self._producer: AIOKafkaProducer | None = None  # made in start: it needs the loop

    async def start(self) -> None:
        """Connect and make sure both topics exist (KafkaError when Kafka cannot be reached)."""
        settings = self._settings
        producer = AIOKafkaProducer(
            **settings.aiokafka_client_options(),
            client_id="journeys-collector",
            acks="all",
            enable_idempotence=True,
            # Requests wait for acknowledgements anyway: a few ms of linger lets concurrent
            # requests' batches share a produce request (about twice the events/s measured).
            linger_ms=5,
            max_batch_size=min(BATCH_BYTES, settings.kafka_max_message_bytes),
            max_request_size=settings.kafka_max_message_bytes,
            # A batch not acknowledged by then fails instead of being sent after the request
            # was answered 503 (a late copy would be harmless, de-duplicated by event_id, but
            # memory would hold it meanwhile).
            request_timeout_ms=int(self.timeout * 1000),
        )
        await producer.start()
        try:
            await ensure_topics(settings, [self.topic, self.dead_letter_topic])
            for topic in (self.topic, self.dead_letter_topic):
                await producer.partitions_for(topic)
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Send what the producer holds, for at most the acknowledgement timeout: with the
        brokers gone it would retry for ever, and what it holds belongs to requests that
        were answered 503 (or are being), which their senders will send again."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.stop(), self.timeout)
        except TimeoutError:
            log.warning("stopped before Kafka acknowledged what the producer held (%.0f s); "
                        "its requests were answered 503", self.timeout)  # fmt: skip

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaUnavailable("the collector's producer is not started")
        return self._producer

    async def publish(self, events: Sequence[Accepted], dead_letters: Sequence[DeadLetter]) -> None:
        count = len(events) + len(dead_letters)
        self.pending += count
        try:
            async with asyncio.timeout(self.timeout):
                futures = await self._send_events(events)
                futures += await self._send_dead_letters(dead_letters)
                await asyncio.gather(*futures)
        except TimeoutError:
            raise KafkaUnavailable(
                f"Kafka at {self.bootstrap_servers} did not acknowledge within "
                f"{self.timeout:g} s (JOURNEYS_COLLECTOR_ACK_TIMEOUT_SECONDS)"
            ) from None
        except KafkaError as error:
            raise KafkaUnavailable(f"Kafka at {self.bootstrap_servers}: {error!r}") from None
        finally:
            self.pending -= count

    async def _send_events(self, events: Sequence[Accepted]) -> list[asyncio.Future[Any]]:
        if not events:
            return []
        partitions = len(await self.producer.partitions_for(self.topic))
        by_partition: dict[int, list[Accepted]] = {}
        for event in events:
            by_partition.setdefault(partition_of(event.key, partitions), []).append(event)
        futures = []
        for partition, share in by_partition.items():
            records: list[Record] = [(event.key, event.raw, []) for event in share]
            futures += await self._send_batches(self.topic, partition, records)
        return futures

    async def _send_dead_letters(self, letters: Sequence[DeadLetter]) -> list[asyncio.Future[Any]]:
        if not letters:
            return []
        # No key (as the worker's): one partition per request, in turn.
        partitions = sorted(await self.producer.partitions_for(self.dead_letter_topic))
        self._next_dead_letter_partition += 1
        partition = partitions[self._next_dead_letter_partition % len(partitions)]
        records: list[Record] = [(None, raw, headers) for raw, headers in letters]
        return await self._send_batches(self.dead_letter_topic, partition, records)

    async def _send_batches(
        self, topic: str, partition: int, records: list[Record]
    ) -> list[asyncio.Future[Any]]:
        futures = []
        batch = self.producer.create_batch()
        for key, value, headers in records:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await self.producer.send_batch(batch, topic, partition=partition))
                batch = self.producer.create_batch()
                # The first record of an empty batch always fits.
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        return futures


async def ensure_topics(settings: Settings, topics: list[str]) -> None:
    """Create missing topics with the configured partitions: a broker that creates topics
    on first use would give them its default (one partition), capping the workers."""
    admin = AIOKafkaAdminClient(
        **settings.aiokafka_client_options(),
        client_id="journeys-collector",
        request_timeout_ms=int(settings.kafka_connect_timeout_seconds * 1000),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        brokers = len((await admin.describe_cluster())["brokers"])
        replicas = min(3, brokers)
        response = await admin.create_topics(
            [NewTopic(t, settings.topic_partitions, replicas) for t in missing]
        )
        for topic, code, *_ in response.topic_errors:
            # Already there: created meanwhile by a worker or a twin collector.
            if code and for_code(code) is not TopicAlreadyExistsError:
                raise for_code(code)(f"cannot create topic {topic}")
        log.info("created topics %s (%d partitions)", missing, settings.topic_partitions)
    finally:
        await admin.close()
