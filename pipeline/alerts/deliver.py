"""`journeys alerts deliver`: the alerts topic to the departments' webhooks (I/O).

A consumer of the alerts topic in a group of its own (JOURNEYS_ALERT_DELIVERY_GROUP), apart
from the worker: the worker publishes an alert as part of its checkpoint and moves on, and
whatever a receiver does (answers slowly, fails, is down for a day) cannot slow the event
path. Offsets are committed only up to the lowest alert not yet delivered or dead-lettered
(`OffsetTracker`), so a crash or stop sends again what was in flight: at least once, with
the same idempotency key. Each department's requests are limited on their own
(JOURNEYS_ALERT_DELIVERY_CONCURRENCY), so one dead receiver does not hold the others back
until JOURNEYS_ALERT_DELIVERY_MAX_PENDING alerts wait; and each department has a circuit
breaker (`pipeline.alerts.breaker`, JOURNEYS_ALERT_DELIVERY_BREAKER_FAILURES), so a receiver
that is down costs a probe request now and then, not a connection per alert attempt, while
its alerts keep their retry schedule and end dead-lettered with the outage as the reason.

Erased customers (`journeys erase`, issue 22): the alerts topic keeps an erased customer's
alerts until its retention, so with JOURNEYS_ERASURE_SALT set the delivery also reads the
erasures topic from its start (`ErasedCustomers`: the worker publishes there the hashes it
adds to its ledger, and its whole ledger as snapshots). It sends nothing before it has read
a whole snapshot, so that no earlier erasure is unknown to it, then reads the topic between
fetches and once more before each POST: an alert of an erased customer is committed past,
counted (`erased_skipped`) and logged without the customer or alert id. The topic, not the
ledger table, since in embedded mode the worker's process alone may open chdb.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from pipeline.alerts.breaker import CircuitBreaker
from pipeline.alerts.metrics import DeliveryMetrics
from pipeline.alerts.offsets import OffsetTracker
from pipeline.alerts.payload import Alert, UnreadableAlert, dead_letter, read_alert
from pipeline.alerts.schedule import RetrySchedule
from pipeline.alerts.sender import Circuit, Sleep, WebhookSender, deliver
from pipeline.alerts.webhooks import Webhook
from pipeline.store.erasure import ErasedCustomers, ErasureError

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger("pipeline.alerts")
SEEN_ALERT_IDS = 100_000
UNREADABLE = "(unreadable)"  # the department label of an alert that could not be read


class AlertDelivery:
    def __init__(
        self,
        settings: Settings,
        webhooks: dict[str, Webhook],
        *,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.webhooks = webhooks
        self.schedule = RetrySchedule(
            settings.alert_delivery_attempts,
            settings.alert_delivery_backoff_seconds,
            settings.alert_delivery_backoff_max_seconds,
        )
        self.sender = WebhookSender(settings.alert_delivery_timeout_seconds)
        self.sleep = sleep
        self.now = now
        self.tracker = OffsetTracker()
        self.counts: Counter[str] = Counter()  # delivered, dead_lettered, no_webhook, ...
        self.metrics = DeliveryMetrics()  # per department, on /metrics
        self._metrics_server: web.AppRunner | None = None
        self._limits = {d: asyncio.Semaphore(settings.alert_delivery_concurrency) for d in webhooks}
        self.circuits = {
            d: Circuit(d, CircuitBreaker(settings.alert_delivery_breaker_failures,
                                         settings.alert_delivery_backoff_seconds),
                       self.metrics.receiver_down.labels(d).set)
            for d in webhooks
        }  # fmt: skip
        self._tasks: set[asyncio.Task[None]] = set()
        # Alert ids taken recently: the worker may publish an alert again after a restart
        # (its record of alerts sent is memory); the receiver would drop the copy by its
        # idempotency key, but need not see it. Bounded: an older copy is sent again.
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._failure: BaseException | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        salt = settings.erasure_salt.get_secret_value() if settings.erasure_salt else None
        self.erased = ErasedCustomers(salt) if salt else None
        self._erasures: AIOKafkaConsumer | None = None
        self._waiting_logged = False

    async def run(self, stop: asyncio.Event, ready: Callable[[], None] = lambda: None) -> None:
        """Deliver until `stop` is set (or a dead letter cannot be written: raised), then
        let what is in flight finish for JOURNEYS_WORKER_STOP_SECONDS and commit what is
        done. Raises KafkaError when Kafka cannot be reached at start."""
        try:
            await self._start()
        except BaseException:
            await self._stop_serving()
            raise
        ready()
        try:
            while not stop.is_set() and self._failure is None:
                await self._read_erasures()
                if self.erased is not None and not self.erased.complete:
                    continue  # no alert is sent before every earlier erasure is known
                await self._take(stop)
                await self._commit()
        finally:
            await self._finish()
        if self._failure is not None:
            raise self._failure

    async def _start(self) -> None:
        s = self.settings
        self.metrics.start(sorted(self.webhooks))
        if s.alert_delivery_metrics_port:  # first: a port in use stops nothing started yet
            self._metrics_server = await self.metrics.serve(
                s.alert_delivery_metrics_host, s.alert_delivery_metrics_port
            )
        await ensure_topic(s, s.topic_alert_dead_letters)
        self._producer = AIOKafkaProducer(
            **s.aiokafka_client_options(), client_id="journeys-alert-delivery", acks="all",
            enable_idempotence=True, max_request_size=s.kafka_max_message_bytes,
        )  # fmt: skip
        self._consumer = AIOKafkaConsumer(
            s.topic_alerts, **s.aiokafka_client_options(), group_id=s.alert_delivery_group,
            client_id="journeys-alert-delivery", enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.worker_session_timeout_seconds * 1000),
        )  # fmt: skip
        await self._producer.start()
        await self._consumer.start()
        await self.sender.start()
        if self.erased is not None:
            # All of the topic, in no group: every worker's snapshots and added hashes.
            self._erasures = AIOKafkaConsumer(
                **s.aiokafka_client_options(), client_id="journeys-alert-delivery",
                enable_auto_commit=False, auto_offset_reset="earliest",
            )  # fmt: skip
            await self._erasures.start()
            self._erasures.assign([TopicPartition(s.topic_erasures, 0)])

    async def _read_erasures(self) -> None:
        """What the erasures topic holds since the last look; waits up to 0.5 s while no
        whole snapshot of the ledger was read yet, else takes only what is fetched."""
        if self._erasures is None or self.erased is None:
            return
        waiting = not self.erased.complete
        fetched = await self._erasures.getmany(timeout_ms=500 if waiting else 0)
        for records in fetched.values():
            for record in records:
                try:
                    self.erased.read(record.key, record.value)
                except ErasureError as error:
                    log.error("erasures topic message skipped: %s", error)
        if waiting and not self.erased.complete and not self._waiting_logged:
            self._waiting_logged = True
            log.warning("waiting for a worker's erasure ledger on %s before sending any alert",
                        self.settings.topic_erasures)  # fmt: skip
        elif waiting and self.erased.complete:
            log.info("erasure ledger read: %d erased customer(s)", len(self.erased.ledger))

    def _of_erased(self, alert: Alert) -> bool:
        if self.erased is None or not self.erased.is_erased(alert.customer_id):
            return False
        self.counts["erased_skipped"] += 1
        log.info("alert of an erased customer not sent (kind %s, department %s)",
                 alert.kind, alert.department)  # fmt: skip
        return True

    async def _take(self, stop: asyncio.Event) -> None:
        assert self._consumer is not None
        room = self.settings.alert_delivery_max_pending - self.tracker.in_flight
        if room <= 0:  # back-pressure: wait for some to finish, keep committing
            await asyncio.wait(self._tasks, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            return
        fetched = await self._consumer.getmany(timeout_ms=500, max_records=min(room, 1000))
        for records in fetched.values():
            for record in records:
                tp = (record.topic, record.partition)
                self.tracker.taken(tp, record.offset)
                task = asyncio.create_task(self._handle(record))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        source = (record.topic, record.partition, record.offset)
        taken = time.monotonic()
        try:
            alert = read_alert(record.value)
        except UnreadableAlert as error:
            reason = f"unreadable alert: {error}"
            await self._dead_letter(record.value, reason, 0, None, None, source, UNREADABLE)
        else:
            webhook = self.webhooks.get(alert.department)
            if webhook is None:
                self.counts["no_webhook"] += 1
            elif self._of_erased(alert):
                pass
            elif self._taken_before(alert.alert_id):
                self.counts["duplicates"] += 1
            else:
                async with self._limits[alert.department]:
                    # Waiting for the department's turn can take long: erased meanwhile?
                    await self._read_erasures()
                    if self._of_erased(alert):
                        self.tracker.done((record.topic, record.partition), record.offset)
                        return
                    department = alert.department
                    outcome = await deliver(
                        self.sender, webhook, alert, self.schedule, self.sleep,
                        self.metrics.retried.labels(department).inc, self.circuits[department],
                        self.metrics.short_circuited.labels(department).inc,
                    )  # fmt: skip
                if outcome.delivered:
                    self.counts["delivered"] += 1
                    self.metrics.delivered.labels(alert.department).inc()
                    self.metrics.seconds.labels(alert.department).observe(time.monotonic() - taken)
                else:
                    # During a known outage, one line at its opening and one at its closing
                    # (with the count) stand for every alert dead-lettered meanwhile.
                    log.log(logging.DEBUG if outcome.outage else logging.WARNING,
                            "alert %s to %s dead-lettered: %s",
                            alert.alert_id, alert.department, outcome.reason)  # fmt: skip
                    await self._dead_letter(record.value, outcome.reason, outcome.attempts,
                                            webhook, outcome.last_status, source,
                                            alert.department)  # fmt: skip
        # Only once delivered or durably dead-lettered: a raise above leaves it uncommitted.
        self.tracker.done((record.topic, record.partition), record.offset)

    def _taken_before(self, alert_id: str) -> bool:
        if alert_id in self._seen:
            return True
        self._seen[alert_id] = None
        if len(self._seen) > SEEN_ALERT_IDS:
            self._seen.popitem(last=False)
        return False

    async def _dead_letter(
        self, raw: bytes | None, reason: str, attempts: int, webhook: Webhook | None,
        last_status: int | None, source: tuple[str, int, int], department: str,
    ) -> None:  # fmt: skip
        assert self._producer is not None
        key, value, headers = dead_letter(
            raw, reason=reason, attempts=attempts, failed_at=self.now(), webhook=webhook,
            last_status=last_status, source=source,
        )  # fmt: skip
        await self._producer.send_and_wait(
            self.settings.topic_alert_dead_letters, value, key=key, headers=headers
        )
        self.counts["dead_lettered"] += 1
        self.metrics.dead_lettered.labels(department).inc()

    async def _commit(self) -> None:
        assert self._consumer is not None
        offsets = self.tracker.committable()
        if not offsets:
            return
        owned = self._consumer.assignment()
        commit = {TopicPartition(*tp): o for tp, o in offsets.items()}
        gone = {(tp.topic, tp.partition) for tp in commit if tp not in owned}
        commit = {tp: o for tp, o in commit.items() if tp in owned}
        self.tracker.forget(gone)
        if commit:
            try:
                await self._consumer.commit(commit)
            except KafkaError as error:  # a rebalance: the new owner re-sends from its commit
                log.warning("could not commit alert offsets (%s); they will be sent again", error)

    async def _finish(self) -> None:
        grace = self.settings.worker_stop_seconds
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                log.info("%d alerts in flight at stop: they are sent again at the next start",
                         len(pending))  # fmt: skip
        try:
            if self._consumer is not None:
                await self._commit()
        finally:
            await self.sender.close()
            if self._consumer is not None:
                await self._consumer.stop()
            if self._producer is not None:
                await self._producer.stop()
            if self._erasures is not None:
                await self._erasures.stop()
            await self._stop_serving()

    async def _stop_serving(self) -> None:
        server, self._metrics_server = self._metrics_server, None
        if server is not None:
            await server.cleanup()


async def ensure_topic(settings: Settings, topic: str) -> None:
    """Create the dead-letter topic when missing, with the configured partitions and
    retention (a broker that creates topics on first use would pick its own)."""
    admin = AIOKafkaAdminClient(
        **settings.aiokafka_client_options(),
        client_id="journeys-alert-delivery",
        request_timeout_ms=int(settings.kafka_connect_timeout_seconds * 1000),
    )
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            return
        brokers = len((await admin.describe_cluster())["brokers"])
        retention_ms = str(int(settings.topic_retention_days * 86_400_000))
        new = NewTopic(topic, settings.topic_partitions, min(3, brokers),
                       topic_configs={"retention.ms": retention_ms})  # fmt: skip
        response = await admin.create_topics([new])
        for name, code, *_ in response.topic_errors:
            if code and for_code(code) is not TopicAlreadyExistsError:
                raise for_code(code)(f"cannot create topic {name}")
    finally:
        await admin.close()
