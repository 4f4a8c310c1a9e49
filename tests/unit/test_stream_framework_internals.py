"""The Faust and aiokafka internals the worker relies on are still there, as it uses them.

The worker reaches past both libraries' public API in a few places, each named in its code:
it patches Faust's producer settings (idempotence on), replaces the consumer's drain loop
(`intake.BatchConsumer`), overrides hooks of Faust's app and worker, commits and reads
offsets through Faust's consumer, stands in for Faust's current event to route table
reads (`state.in_partition`), reads RocksDB's partitions directly, and waits on aiokafka's
topic metadata (`outbox`). An upgrade that renames or drops one of them breaks nothing at
import and the worker at run time; the worst cases fail silently (an override no longer
called, a fallback taken for ever). These checks run against the installed classes, so the
upgrade fails here first.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.structs import TopicPartition
from faust.stores import rocksdb
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.settings import Settings
from pipeline.stream import intake, worker
from pipeline.stream.intake import BatchConsumer
from pipeline.stream.state import in_partition


@pytest.fixture
def app(tmp_path: Path) -> Any:
    """The worker's app as `journeys run` builds it (nothing connects before it starts)."""
    return worker.create_app(Settings(data_dir=tmp_path, worker_store="rocksdb"))


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_producers_faust_builds_are_idempotent(app: Any) -> None:
    assert faust_aiokafka.Producer._settings_extra is worker._idempotent_producer_settings
    for factory in (faust_aiokafka.Producer._new_producer,
                    faust_aiokafka.ThreadedProducer._new_producer):  # fmt: skip
        assert "._settings_extra()" in inspect.getsource(factory), factory.__qualname__

    async def built() -> AIOKafkaProducer:
        # What the producer's start does, and the checkpoint's producer thread (`producer_thread`).
        producer = app.producer._new_producer()
        await producer.stop()  # never started: nothing to flush, only its client to close
        return producer

    # aiokafka keeps a transaction manager exactly when idempotence is on.
    assert asyncio.run(built())._txn_manager is not None


# Faust's private hooks the worker's classes override: a renamed hook leaves the override
# defined and never called (Faust's own drain loop, its own stop) with no error anywhere.
OVERRIDES = {
    BatchConsumer: ["_drain_messages", "_new_consumer_thread"],
    intake.BatchConsumerThread: ["_create_worker_consumer"],
    worker.JourneysApp: ["_new_consumer", "_on_partitions_assigned"],
    worker.JourneysWorker: ["_shutdown_loop"],
}


@pytest.mark.parametrize("subclass", list(OVERRIDES), ids=lambda c: c.__name__)
def test_every_private_hook_the_worker_overrides_is_still_faust_s(subclass: type) -> None:
    base = subclass.__mro__[1]
    for name in OVERRIDES[subclass]:
        assert name in vars(subclass), f"{subclass.__name__} no longer overrides {name}"
        assert hasattr(base, name), f"{base.__qualname__}.{name} is gone: the override is dead"
        assert parameters(getattr(subclass, name)) == parameters(getattr(base, name)), name


def test_faust_s_fetcher_still_hands_the_consumer_its_drain_loop() -> None:
    fetch = faust_consumer.Fetcher._fetcher.fun  # a mode ServiceTask around the coroutine
    assert "consumer._drain_messages(self)" in inspect.getsource(fetch)
    assert parameters(faust_consumer.Consumer._wait_next_records)[:2] == ["self", "timeout"]
    assert parameters(faust_aiokafka.Consumer._to_message) == ["self", "tp", "record"]
    assert issubclass(BatchConsumer.consumer_stopped_errors[0], BaseException)


def test_the_consumer_keeps_the_offsets_and_state_the_worker_reads(app: Any) -> None:
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    for offsets in ("_read_offset", "_committed_offset"):
        assert isinstance(getattr(consumer, offsets), dict), offsets
    assert isinstance(consumer._buffered_partitions, set)
    assert not consumer._stopped.is_set()  # the drain loop's stop signal (mode's Service)
    assert parameters(consumer._commit_offsets)[:1] == ["offsets"]
    for public in ("highwater", "seek_wait", "assignment"):
        assert callable(getattr(consumer, public)), public
    assert isinstance(app.consumer_generation_id, int)
    assert app._consumer is consumer
    assert callable(app._on_partitions_revoked)
    assert callable(app.producer._ensure_producer)


def test_the_worker_s_fetches_wait_at_most_100_ms_for_data(app: Any) -> None:
    """Faust fixes aiokafka's fetch wait at 1,500 ms; the worker's consumer sets its own
    (`intake.FETCH_MAX_WAIT_MS`), which aiokafka hands its fetcher when the consumer starts."""
    thread = app.consumer._new_consumer_thread()
    assert isinstance(thread, intake.BatchConsumerThread)

    async def built() -> Any:
        consumer = thread._create_worker_consumer(app.transport)
        await consumer._client.close()  # never started: only its client to close
        return consumer

    consumer = asyncio.run(built())
    assert consumer._fetch_max_wait_ms == intake.FETCH_MAX_WAIT_MS == 100
    start = inspect.getsource(type(consumer).start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start


def test_a_partition_marker_is_faust_s_current_event() -> None:
    with in_partition("touchpoints", 3):
        event = faust.current_event()
        assert event is not None and event.message.partition == 3
    assert faust.current_event() is None


def test_rocksdb_still_opens_one_database_per_partition_the_recovery_reads(app: Any) -> None:
    store = app.tables["journey_books"].data
    assert isinstance(store, rocksdb.Store)
    for name in ("_db_for_partition", "_decode_key", "_decode_value", "_visible_items"):
        assert callable(getattr(store, name)), name  # else `StateTable.items` reads every book
    assert parameters(store._db_for_partition) == ["partition"]
    assert parameters(store._visible_items) == ["db"]


def test_aiokafka_still_waits_on_a_topic_s_metadata() -> None:
    assert parameters(AIOKafkaClient._wait_on_metadata) == ["self", "topic"]


def test_the_intake_seeks_back_only_a_position_nothing_moved_since_the_fetch() -> None:
    # `intake._seek_back` reads aiokafka's subscription state as its consumer keeps it.
    fetched, reset, other = (TopicPartition("t", p) for p in range(3))

    async def scenario() -> tuple[dict[Any, int], int, int]:
        subscription = SubscriptionState()  # its futures need a running loop
        subscription.assign_from_user({fetched, reset})

        class Consumer:  # the two things `_seek_back` uses of aiokafka's consumer
            _subscription = subscription

            def seek(self, tp: TopicPartition, offset: int) -> None:
                subscription.seek(tp, offset)

        subscription.seek(fetched, 200)  # a fetch of 100-199 moved it on
        subscription.seek(reset, 40)  # a seek to the committed offset since that fetch
        dropped = {fetched: (100, 199), reset: (100, 199), other: (0, 9)}  # other: not ours
        seeks = await intake._seek_back(Consumer(), dropped)
        state = subscription._assigned_state
        return seeks, state(fetched).position, state(reset).position

    assert asyncio.run(scenario()) == ({fetched: 100}, 100, 40)
