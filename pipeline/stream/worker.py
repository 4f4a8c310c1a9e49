"""The Faust app: settings in, the intake, table, timers and web views wired to the runtime.

`create_app(settings)` builds a fresh app (tests and `journeys run` pass their settings);
`pipeline.app` holds the one built from the environment for `faust -A pipeline.app worker`.
The app stays a Faust app in everything but the per-message stream: consumer group and
rebalance callbacks, the changelog-backed journey table, timers and web views are Faust's;
whole fetched batches go to the runtime (`intake`), which checkpoints them itself.

A stop (SIGTERM, Ctrl-C, or the worker's own after a failed checkpoint) closes the intake,
runs a last checkpoint of what was taken (bounded by `worker_stop_seconds`), lets Faust
leave the group, then closes the store; a watchdog ends the process at the deadline
whatever hangs (a broker or store that is down), leaving what was not committed to the
replay. The exit code is 0 for a requested stop, 1 after a failed checkpoint, and 2 when
the input topics' partitions are not JOURNEYS_TOPIC_PARTITIONS (refused at start).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from pipeline.compiled import ENGINE
from pipeline.journey import DEFAULT_MODEL_PATH, load_score_model
from pipeline.settings import Settings
from pipeline.store import Store, apply_migrations, get_store
from pipeline.store.erase import load_ledger
from pipeline.store.erasure import ErasureLedger
from pipeline.store.models import LIVE, record_model
from pipeline.store.retention import apply_retention
from pipeline.stream.book_cache import BookCache
from pipeline.stream.context import ContextAPI, context_tokens
from pipeline.stream.erasures import ErasureDesk
from pipeline.stream.health import HealthSampler
from pipeline.stream.intake import BatchConsumer
from pipeline.stream.logs import quiet_root_logger
from pipeline.stream.metrics import Metrics
from pipeline.stream.outbox import Outbox, partition_of
from pipeline.stream.processor import JourneyProcessor
from pipeline.stream.producer_thread import ProducerThread
from pipeline.stream.readiness import Limits
from pipeline.stream.runtime import Runtime
from pipeline.stream.sink import ClickHouseSink
from pipeline.stream.state import StateTable
from pipeline.stream.ticks import tick_idle_partitions
from pipeline.stream.topics import TopicNames, define_topics
from pipeline.stream.web import add_context_views, add_views

log = logging.getLogger("pipeline.stream")
# Largest record batch the worker's producer builds (and at most kafka_max_message_bytes).
PRODUCER_BATCH_BYTES = 512 * 1024


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


class JourneysWorker(faust.Worker):
    """Faust's worker, closing the store last and exiting with the app's exit code."""

    def _shutdown_loop(self) -> None:
        app: JourneysApp = self.app  # type: ignore[assignment]
        try:
            super()._shutdown_loop()
        finally:
            app.close_store()
        if app.exit_code:
            raise SystemExit(app.exit_code)


class JourneysApp(faust.App):
    """Creates its topics before subscribing; hands its topics' batches to the runtime."""

    settings: Settings
    declared: list[Any]
    batch_topics: frozenset[str] = frozenset()
    journeys_runtime: Runtime | None = None
    journeys_store: Store | None = None
    journeys_sender: ProducerThread | None = None
    on_first_start_hook: Callable[[], Any] | None = None
    exit_code = 0

    def _new_consumer(self) -> Any:
        transport = self.transport
        consumer = BatchConsumer(
            transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=transport.loop,
        )
        consumer.batch_topics = self.batch_topics
        return consumer

    async def _on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
        # First: the consumer starts each partition of the new assignment at its committed
        # offset, so input may be taken again (the revoke stopped it: `Runtime.revoke`).
        if self.journeys_runtime is not None:
            self.journeys_runtime.assigned()
        await super()._on_partitions_assigned(assigned, generation_id)

    async def on_first_start(self) -> None:
        await super().on_first_start()
        quiet_root_logger()
        # Compiled, or from source (asked, or sources changed since the install): say which.
        slower = any(r in ("changed", "absent") for r in ENGINE.modules.values())
        log.log(logging.WARNING if slower else logging.INFO, "%s", ENGINE.describe())
        for topic in self.declared:
            await topic.declare()
        if self.journeys_sender is not None:  # before the agents: they may send too
            await self.journeys_sender.start()
        if not await self._partitions_as_configured():
            return  # stopping with exit 2: nothing opened, no input taken
        if self.on_first_start_hook is not None:
            await self.on_first_start_hook()

    async def _partitions_as_configured(self) -> bool:
        """Whether the touchpoints and routed topics have JOURNEYS_TOPIC_PARTITIONS
        partitions; if not, a stop with exit 2 is requested and the log says what to do.

        A journey's events are placed by that count (Kafka's partitioner, as producers key
        them), and the state table's changelog has that many partitions. A topic created
        beforehand with another count was not refused: with more, the first checkpoint
        failed on the changelog (`AssertionError: Unrecognized partition`); with fewer,
        events were re-keyed to partitions that do not exist."""
        producer = self.producer._ensure_producer()  # type: ignore[attr-defined]
        expected = self.settings.topic_partitions
        for topic in (self.settings.topic_touchpoints, self.settings.topic_routed):
            found = len(await producer.partitions_for(topic))
            if found != expected:
                log.critical(
                    "topic %s has %d partitions, JOURNEYS_TOPIC_PARTITIONS is %d: set it to "
                    "the topic's count (every worker alike, before the first start: the "
                    "journey table's changelog is created with it), or use a topic with %d; "
                    "stopping", topic, found, expected, expected,
                )  # fmt: skip
                self.request_stop(2)
                return False
        return True

    def request_stop(self, exit_code: int) -> None:
        """Stop the worker as SIGTERM does, then exit with `exit_code` (the worst asked)."""
        self.exit_code = max(self.exit_code, exit_code)
        os.kill(os.getpid(), signal.SIGTERM)

    async def on_stop(self) -> None:
        self._arm_watchdog(self.settings.worker_stop_seconds)
        consumer = self._consumer
        runtime = self.journeys_runtime
        # One budget for taking in the last fetch and the last checkpoint together: a fetch
        # held back by a full sink waits on the running checkpoint, and two budgets in a row
        # (0.3 + 0.6 of the stop time) left too little of a 10 s grace for the rest of the
        # stop (Faust's services, RocksDB, closing the store, the process's exit: 3-7 s on
        # a loaded 2-core machine). What is not committed by then is replayed at start.
        budget = self.settings.worker_stop_seconds * 0.6
        deadline = time.monotonic() + budget
        if isinstance(consumer, BatchConsumer):
            consumer.close_intake()
            try:
                await asyncio.wait_for(consumer.wait_handled(), budget / 2)
            except TimeoutError:
                log.warning("stop: a batch was still being taken in; it is replayed at start")
        if runtime is not None:
            await runtime.close(max(deadline - time.monotonic(), 0.1))
            runtime.collector.stop()
        if self.journeys_sender is not None:  # after the last checkpoint, its last sender
            await self.journeys_sender.stop(max(deadline - time.monotonic(), 1.0))
        await super().on_stop()

    def close_store(self) -> None:
        store, self.journeys_store = self.journeys_store, None
        if store is not None:
            started = time.monotonic()
            store.close()
            log.info("store closed seconds=%.3f", time.monotonic() - started)

    def _arm_watchdog(self, seconds: float) -> None:
        def give_up() -> None:
            log.error(
                "stop: not finished within %.0fs (broker or store unreachable?); exiting now, "
                "uncommitted input is replayed at the next start", seconds,
            )  # fmt: skip
            logging.shutdown()
            os._exit(self.exit_code)

        timer = threading.Timer(seconds, give_up)
        timer.daemon = True
        timer.start()


def create_app(settings: Settings, open_store: Callable[[Settings], Store] | None = None) -> Any:
    readers, emitters = context_tokens(settings)  # a malformed setting stops us here
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    app = JourneysApp(
        settings.worker_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="rocksdb://" if settings.worker_store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir / "worker"),
        web_port=settings.worker_web_port,
        web_host=settings.worker_web_host,
        # Where the group's other members forward context requests for our partitions.
        canonical_url=settings.worker_web_url or _web_url(settings),
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.worker_batch_size,
        consumer_max_fetch_size=8 * 1024 * 1024,
        # A worker killed without goodbye holds its partitions this long: the restart waits.
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_seconds / 3),
        producer_acks=-1,
        producer_max_request_size=settings.kafka_max_message_bytes,
        # The checkpoint's sends (`Outbox`: changelog books of about 6 KB, score snapshots)
        # fill whole batches, and aiokafka takes the next batch of a topic-partition only
        # once the previous one left: at Kafka's 16 KiB, two or three books a batch, a
        # checkpoint of 5,000 books took hundreds of produce round trips, one batch per
        # partition each. Batches as large as the collector's (`collect.publish`).
        producer_max_batch_size=min(PRODUCER_BATCH_BYTES, settings.kafka_max_message_bytes),
        table_standby_replicas=0,
        Worker=JourneysWorker,
    )
    app.settings = settings
    topics = define_topics(app, settings)
    app.declared = topics.all()
    app.batch_topics = frozenset({settings.topic_touchpoints, settings.topic_routed})
    app.topics.add(topics.inbound)  # subscribed by Faust's conductor, taken by the intake
    table = app.Table(
        "journey_books",
        partitions=settings.topic_partitions,
        key_type=bytes,
        value_type=bytes,
        options=settings.worker_rocksdb_options(),  # the memory store ignores them
    )
    metrics = Metrics()
    add_views(
        app,
        metrics,
        Limits(settings.worker_ready_max_lag, settings.worker_ready_flush_age_seconds),
        store_open=lambda: app.journeys_runtime is not None,
        ping_kafka=functools.partial(_ping_kafka, app),
    )

    add_context_views(app, ContextAPI(
        app, table, topic=settings.topic_touchpoints, partitions=settings.topic_partitions,
        place=partitioner(settings.topic_partitions), readers=readers, emitters=emitters,
    ), metrics)  # fmt: skip

    salt = settings.erasure_salt.get_secret_value() if settings.erasure_salt else None
    # The checkpoint's sends, on a producer of their own thread (`producer_thread`).
    sender = ProducerThread(lambda: app.producer._new_producer())  # type: ignore[attr-defined]
    app.journeys_sender = sender
    outbox = Outbox(lambda: sender.producer, sender.run)
    # The ledger snapshot for the alert delivery, at least four times per topic retention.
    snapshot_every = min(3600.0, settings.erasure_topic_retention_hours * 900)
    desk = ErasureDesk(lambda: app.journeys_runtime, outbox, settings.topic_erasures, salt,
                       settings.worker_id, snapshot_every)  # fmt: skip

    async def start() -> None:
        store = await asyncio.to_thread(_open_store, settings, open_store)
        app.journeys_store = store
        # Before any input: a worker that could not tell erased customers would restore them.
        ledger = (await asyncio.to_thread(load_ledger, store, salt)).usable()
        runtime = _runtime(
            app, settings, store, metrics, table, TopicNames.of(topics), outbox, ledger
        )
        app.journeys_runtime = runtime
        runtime.collector.start()
        app.consumer.on_batch = runtime.handle  # type: ignore[attr-defined]

    app.on_first_start_hook = start

    @app.agent(topics.erasures)
    async def erasures(stream: Any) -> None:
        async for event in stream.events():
            await desk.handle(event.key, event.value)

    @app.timer(5.0)
    async def reload_ledger() -> None:
        if app.journeys_runtime is not None and not app.should_stop:
            try:
                await desk.reload()
            except Exception as exc:  # the next reload tries again; intake drops meanwhile
                log.warning("erasure ledger not reloaded error=%s", str(exc)[:300])

    # A quarter of the flush interval: rows wait at most a quarter longer than configured.
    @app.timer(min(settings.sink_flush_seconds / 4, 0.25))
    async def flush_when_due() -> None:
        runtime = app.journeys_runtime
        if runtime is not None and runtime.sink.due():
            runtime.start_flush()

    @app.timer(max(settings.clock_idle_seconds / 2, 0.5))
    async def tick_idle() -> None:
        if app.journeys_runtime is not None:
            await tick_idle_partitions(app, app.journeys_runtime, topics.routed, settings, metrics)

    @app.on_partitions_revoked.connect
    async def store_then_forget(sender: Any, /, *args: Any, signal: Any, **kw: Any) -> None:
        revoked = args[0] if args else kw.get("revoked", ())
        runtime = app.journeys_runtime
        if runtime is None or app.should_stop:
            return
        # What was taken from every partition is stored and committed before the group
        # moves any: the next owner starts where this worker stopped, on stored state.
        await runtime.revoke([tp.partition for tp in revoked
                              if tp.topic == settings.topic_touchpoints])  # fmt: skip

    sampler = HealthSampler(f"{socket.gethostname()}:{os.getpid()}", settings.topic_touchpoints)

    @app.timer(settings.worker_health_sample_seconds)
    async def sample_health() -> None:
        store = app.journeys_store
        if store is None or app.should_stop:
            return
        rows = sampler.rows(metrics, datetime.now(UTC))
        try:
            await asyncio.to_thread(store.insert, "pipeline_metrics", rows)
        except Exception as exc:  # a lost sample is a gap in a chart, never lost data
            log.warning("health sample not stored error=%s", str(exc)[:300])

    @app.timer(15.0)
    async def collect_when_idle() -> None:
        # Automatic collection is off while the runtime runs (`collector`): an idle worker
        # handles no batch, so its young garbage is collected here.
        if app.journeys_runtime is not None:
            app.journeys_runtime.collector.after_batch()

    @app.timer(10.0)
    async def log_counters() -> None:
        log.info("counters %s", metrics.as_dict())

    return app


def _web_url(settings: Settings) -> str:
    host = settings.worker_web_host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: others reach us by name
        host = socket.gethostname()
    return f"http://{host}:{settings.worker_web_port}"


def _open_store(settings: Settings, open_store: Callable[[Settings], Store] | None) -> Store:
    store = (open_store or get_store)(settings)
    apply_migrations(store)
    apply_retention(store, settings.retention_days_events, settings.retention_days_journeys)
    return store


def _runtime(
    app: JourneysApp, settings: Settings, store: Store, metrics: Metrics, table: Any,
    names: TopicNames, outbox: Outbox, ledger: ErasureLedger,
) -> Runtime:  # fmt: skip
    model = load_score_model(settings.score_model_path) if settings.score_model_path else None
    live = model or load_score_model()
    # The panels and the report read this version by default (score_models, 0007).
    record_model(store, live.version, LIVE, (settings.score_model_path or DEFAULT_MODEL_PATH)
                 .read_text(encoding="utf-8"))  # fmt: skip
    state = StateTable(table, settings.topic_touchpoints, outbox)
    books = BookCache(state.read, keep=settings.worker_book_cache)
    sink = ClickHouseSink(
        store,
        metrics,
        flush_rows=settings.sink_flush_rows,
        flush_seconds=settings.sink_flush_seconds,
        buffer_rows=settings.sink_buffer_rows,
        retry_max_seconds=settings.sink_retry_max_seconds,
    )
    processor = JourneyProcessor.from_settings(
        settings, books, partitioner(settings.topic_partitions), metrics, live, ledger
    )

    async def commit_offsets(offsets: dict[tuple[str, int], int]) -> bool:
        tps = {TP(topic, partition): offset for (topic, partition), offset in offsets.items()}
        committed = await app.consumer._commit_offsets(tps)  # type: ignore[attr-defined]
        if not committed:
            log.info("offsets not committed (partitions moved); the next owner replays "
                     "them onto stored state: %s", offsets)  # fmt: skip
        return bool(committed)

    async def rewind(offsets: dict[tuple[str, int], int]) -> None:
        # In the consumer's own thread (seek_wait), as Faust seeks: aiokafka's consumer is
        # not thread-safe. Prefetched records of these partitions are dropped by the seek.
        assigned = app.consumer.assignment()
        seeks = {TP(topic, partition): offset for (topic, partition), offset in offsets.items()
                 if TP(topic, partition) in assigned}  # fmt: skip
        if seeks:
            await app.consumer.seek_wait(seeks)
        log.info(
            "consumer rewound to %s", {f"{tp.topic}-{tp.partition}": o for tp, o in seeks.items()}
        )

    return Runtime(
        processor=processor, books=books, sink=sink, state=state, outbox=outbox, names=names,
        touchpoints_topic=settings.topic_touchpoints, commit_offsets=commit_offsets,
        stop=app.request_stop, rewind=rewind, attempts=settings.worker_processing_attempts,
        max_message_bytes=settings.kafka_max_message_bytes,
    )  # fmt: skip


async def _ping_kafka(app: Any) -> Any:
    """A metadata round trip on the producer's connections: do the brokers answer us?"""
    producer = app.producer._ensure_producer()  # NotReady before the app started
    return await producer.client.fetch_all_metadata()


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
