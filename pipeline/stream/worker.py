"""The Faust app: settings in, agents, table, timers and web views wired to the runtime.

`create_app(settings)` builds a fresh app (tests and `journeys run` pass their settings);
`pipeline.app` holds the one built from the environment for `faust -A pipeline.app worker`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.contract import Validator
from pipeline.journey import load_score_model
from pipeline.settings import Settings
from pipeline.store import Store, apply_migrations, get_store
from pipeline.stream.books import BookCache
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.health import HealthSampler
from pipeline.stream.metrics import Metrics
from pipeline.stream.outbox import Outbox, partition_of
from pipeline.stream.processor import JourneyProcessor
from pipeline.stream.readiness import Limits
from pipeline.stream.runtime import Runtime
from pipeline.stream.sink import ClickHouseSink
from pipeline.stream.topics import TICK_KEY, define_topics
from pipeline.stream.web import add_views

log = logging.getLogger("pipeline.stream")


def _idempotent_producer_settings(self: Any) -> dict[str, Any]:
    # Faust turns producer idempotence on only in its exactly-once mode, which we do not
    # use; without it a retried send can duplicate a changelog entry or a dead letter.
    return {"acks": "all", "enable_idempotence": True}


faust_aiokafka.Producer._settings_extra = _idempotent_producer_settings  # type: ignore[method-assign]


def partitioner(partitions: int) -> Callable[[str], int]:
    """Kafka's default partitioner (murmur2), as the contract's producers key messages.

    aiokafka's murmur2 is pure Python (about 10 us a key, a tenth of the processor's time
    per event); most events belong to a journey seen recently, so answers are cached.
    """

    @functools.lru_cache(maxsize=65_536)
    def place(key: str) -> int:
        return partition_of(key.encode(), partitions)

    return place


def quiet_root_logger() -> None:
    """Undo Faust's root logger at DEBUG when the worker logs at WARN or above.

    At `-l warn` (Faust's default) the worker sets the root logger to DEBUG so that its
    terminal spinner sees every record; then every `log.debug` in aiokafka and Faust builds
    a record that the handler then drops (6-8% of the event loop in the benchmark's
    profile). Raising the root logger to its handlers' lowest level drops them unbuilt.
    """
    root = logging.getLogger()
    levels = [h.level for h in root.handlers if type(h).__name__ != "SpinnerHandler"]
    if levels and root.level < min(levels):
        root.setLevel(min(levels))


class JourneysApp(faust.App):
    """Creates its topics (partitions, retention) before subscribing to them."""

    declared: list[Any]
    on_first_start_hook: Callable[[], Any] | None = None

    async def on_first_start(self) -> None:
        await super().on_first_start()
        quiet_root_logger()
        for topic in self.declared:
            await topic.declare()
        if self.on_first_start_hook is not None:
            await self.on_first_start_hook()

    async def on_stop(self) -> None:
        # Store what is buffered so a clean stop replays nothing; a store that is down
        # gets a few seconds, after which the restart replays the rest.
        runtime = getattr(self, "journeys_runtime", None)
        if runtime is not None and runtime.sink is not None:
            try:
                await asyncio.wait_for(runtime.flush_now(), timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("stopping with rows still buffered; they are replayed at start")
        await super().on_stop()


def create_app(settings: Settings, open_store: Callable[[Settings], Store] | None = None) -> Any:
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    app = JourneysApp(
        settings.worker_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="rocksdb://" if settings.worker_store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir / "worker"),
        web_port=settings.worker_web_port,
        web_host=settings.worker_web_host,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A worker killed without goodbye holds its partitions this long: the restart waits.
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_seconds / 3),
        producer_acks=-1,
        table_standby_replicas=0,
    )
    topics = define_topics(app, settings)
    app.declared = topics.all()
    table = app.Table(
        "journey_books",
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        options=settings.worker_rocksdb_options(),  # the memory store ignores them
    )
    runtime = Runtime(table, topics, settings.topic_touchpoints)
    metrics = Metrics()
    add_views(
        app,
        metrics,
        Limits(settings.worker_ready_max_lag, settings.worker_ready_flush_age_seconds),
        store_open=lambda: runtime.sink is not None,
        ping_kafka=functools.partial(_ping_kafka, app),
    )

    async def start() -> None:
        store = await asyncio.to_thread(_open_store, settings, open_store)
        _wire(runtime, settings, store, metrics)
        runtime.outbox = Outbox(app.producer._ensure_producer)  # type: ignore[attr-defined]

    app.on_first_start_hook = start

    @app.agent(topics.inbound)
    async def journeys(stream: Any) -> None:
        runtime.stream = stream
        async for events in stream.noack_take(settings.worker_batch_size,
                                              within=settings.worker_batch_seconds):  # fmt: skip
            await runtime.handle(events)

    # A quarter of the flush interval: rows wait at most a quarter longer than configured.
    @app.timer(min(settings.sink_flush_seconds / 4, 0.25))
    async def flush_when_due() -> None:
        if runtime.sink is not None and runtime.sink.due():
            runtime.start_flush()

    @app.timer(max(settings.clock_idle_seconds / 2, 0.5))
    async def tick_idle_partitions() -> None:
        await _tick(app, runtime, settings, metrics)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kw: Any) -> None:
        revoked = args[0] if args else kw.get("revoked", ())
        # Faust waited for every event to be acked (so flushed) before this; a partition
        # assigned again later is recovered afresh from the table.
        for tp in revoked:
            if tp.topic == settings.topic_touchpoints:
                runtime.forget(tp.partition)

    sampler = HealthSampler(f"{socket.gethostname()}:{os.getpid()}", settings.topic_touchpoints)

    @app.timer(settings.worker_health_sample_seconds)
    async def sample_health() -> None:
        if runtime.sink is None:
            return
        rows = sampler.rows(metrics, datetime.now(UTC))
        try:
            await asyncio.to_thread(runtime.sink.store.insert, "pipeline_metrics", rows)
        except Exception as exc:  # a lost sample is a gap in a chart, never lost data
            log.warning("health sample not stored error=%s", str(exc)[:300])

    @app.timer(10.0)
    async def log_counters() -> None:
        log.info("counters %s", metrics.as_dict())

    app.journeys_runtime = runtime  # type: ignore[attr-defined]
    return app


def _open_store(settings: Settings, open_store: Callable[[Settings], Store] | None) -> Store:
    store = (open_store or get_store)(settings)
    apply_migrations(store)
    return store


def _wire(runtime: Runtime, settings: Settings, store: Store, metrics: Metrics) -> None:
    model = load_score_model(settings.score_model_path) if settings.score_model_path else None
    books = BookCache(runtime.read_book, keep=settings.worker_book_cache)
    runtime.books = books
    runtime.sink = ClickHouseSink(
        store,
        metrics,
        flush_rows=settings.sink_flush_rows,
        flush_seconds=settings.sink_flush_seconds,
        buffer_rows=settings.sink_buffer_rows,
        retry_max_seconds=settings.sink_retry_max_seconds,
    )
    runtime.processor = JourneyProcessor(
        model or load_score_model(),
        Validator.from_settings(settings),
        books,
        partitioner(settings.topic_partitions),
        touchpoints_topic=settings.topic_touchpoints,
        alert_horizon_s=settings.alert_horizon_hours * 3600,
        dedup=RecentEventIds(
            int(timedelta(hours=settings.dedup_window_hours).total_seconds() * 1_000_000),
            settings.dedup_max_ids,
        ),
        metrics=metrics,
    )


async def _tick(app: Any, runtime: Runtime, settings: Settings, metrics: Metrics) -> None:
    """Send a wall-clock tick to each caught-up partition that has been idle a while.

    Ticks go through the routed topic to the partition itself because a table may only be
    changed from inside its stream; a partition that is still behind (a replay) gets none,
    so old traffic never sees today's wall clock.
    """
    if runtime.processor is None:
        return
    now = time.monotonic()
    for tp in app.consumer.assignment():
        if tp.topic != settings.topic_touchpoints:
            continue
        lag = await _lag(app, runtime, tp)
        metrics.consumer_lag[str(tp.partition)] = lag
        idle = now - runtime.last_activity.get(tp.partition, 0.0) >= settings.clock_idle_seconds
        if idle and lag <= 0:
            tick_us = int(datetime.now(UTC).timestamp() * 1_000_000)
            await runtime.topics.routed.send(
                key=TICK_KEY, value=str(tick_us).encode(), partition=tp.partition
            )
            runtime.last_activity[tp.partition] = now


async def _ping_kafka(app: Any) -> Any:
    """A metadata round trip on the producer's connections: do the brokers answer us?"""
    producer = app.producer._ensure_producer()  # NotReady before the app started
    return await producer.client.fetch_all_metadata()


async def _lag(app: Any, runtime: Runtime, tp: Any) -> int:
    """Messages of the partition not processed yet (fetched or not)."""
    highwater = app.consumer.highwater(tp)
    position = await app.consumer.position(tp)
    if highwater is None or position is None:
        return 1  # unknown: not caught up
    processed = runtime.next_offset.get(tp.partition, position)
    return max(int(highwater) - int(processed), 0)


def _credentials(settings: Settings) -> Any:
    options = settings.kafka_client_options()
    context = None
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=options.get("ssl_cafile"))
        if options.get("ssl_certfile"):
            context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options.get("sasl_plain_password"),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None
