"""Alert delivery on the real broker, to real HTTP receivers started by the test.

A receiver that fails each alert's first attempt gets every alert exactly once per
idempotency key, validly signed, on the retry; a receiver that is down (and one that
refuses) ends in the dead-letter topic with the reason; offsets are committed past what
was delivered or dead-lettered, so nothing is sent again after a restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from pipeline.alerts import parse_webhooks, verify
from pipeline.alerts.deliver import AlertDelivery
from pipeline.alerts.signing import ATTEMPT_HEADER, IDEMPOTENCY_HEADER, idempotency_key
from pipeline.kafka.local import free_port
from pipeline.settings import Settings, load_settings

SECRET = "maintenance-secret-0123456789"


class Receiver:
    """A department's webhook: checks each signature, fails the first attempt of every
    idempotency key when asked to, and counts what it accepted per key."""

    def __init__(self, *, fail_first: bool = False, status: int = 200) -> None:
        self.fail_first = fail_first
        self.status = status
        self.accepted: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.attempts: list[tuple[str, int]] = []
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(SECRET, request.headers, body, now=time.time())
        except ValueError:
            self.bad_signatures += 1
            return web.Response(status=401)
        key = request.headers[IDEMPOTENCY_HEADER]
        self.attempts.append((key, int(request.headers[ATTEMPT_HEADER])))
        if self.fail_first and not any(k == key for k, _ in self.attempts[:-1]):
            return web.Response(status=503, text="restarting")
        if self.status == 200 and key not in self.accepted:
            self.bodies[key] = json.loads(body)
        if self.status == 200:
            self.accepted[key] += 1
        return web.Response(status=self.status, text="gone" if self.status == 410 else "ok")


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def alert(department: str, journey: str, kind: str = "promise_broken") -> dict[str, Any]:
    return {
        "alert_id": f"{kind}:{journey}:ref-{journey}",
        "kind": kind,
        "department": department,
        "journey_id": journey,
        "customer_id": f"c-{journey}",
        "raised_at": "2026-03-02T10:00:00Z",
        "act_by": "2026-03-03T10:00:00Z",
        "context": {},
    }


def settings_for(bootstrap: str, name: str, webhooks: dict[str, str], **extra: Any) -> Settings:
    config = {d: {"url": url, "secret": SECRET} for d, url in webhooks.items()}
    return load_settings(
        kafka_bootstrap_servers=bootstrap,
        topic_alerts=f"{name}.alerts",
        topic_alert_dead_letters=f"{name}.alerts.dlq",
        alert_delivery_group=f"{name}-delivery",
        alert_webhooks=json.dumps(config),
        alert_delivery_backoff_seconds=0.05,
        alert_delivery_backoff_max_seconds=0.2,
        **({"alert_delivery_metrics_port": free_port()} | extra),
    )


async def publish(settings: Settings, alerts: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for body in alerts:
            await producer.send_and_wait(
                settings.topic_alerts, orjson.dumps(body), key=body["department"].encode()
            )
    finally:
        await producer.stop()


async def run_until(
    delivery: AlertDelivery, done: Any, timeout: float = 60
) -> dict[tuple[str, str], float]:
    """Run the delivery until `done()`; what its /metrics page showed before the stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # long enough for a duplicate to show, and a commit
    metrics = await scrape(delivery.settings) if not task.done() else {}
    stop.set()
    await task
    assert done(), f"not done within {timeout} s: {delivery.counts}"
    return metrics


async def scrape(settings: Settings) -> dict[tuple[str, str], float]:
    """The delivery's Prometheus page, read over HTTP: (sample name, department) -> value."""
    url = f"http://127.0.0.1:{settings.alert_delivery_metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, sample.labels.get("department", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


async def committed(settings: Settings) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=settings.alert_delivery_group
    )
    await consumer.start()
    try:
        parts = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(settings.topic_alerts, p)
               for p in parts.partitions_for_topic(settings.topic_alerts) or ()]  # fmt: skip
        total = 0
        for tp in tps:
            total += await consumer.committed(tp) or 0
        return total
    finally:
        await consumer.stop()


async def dead_letters(settings: Settings, expected: int) -> list[tuple[bytes, dict[str, Any]]]:
    consumer = AIOKafkaConsumer(
        settings.topic_alert_dead_letters,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, Any]]] = []
    try:
        deadline = time.monotonic() + 30
        while len(found) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [(dict(r.headers)["reason"], orjson.loads(r.value)) for r in records]
    finally:
        await consumer.stop()
    return found


def test_each_alert_arrives_once_per_idempotency_key_despite_a_failure_and_a_retry(
    bootstrap_servers: str, unique_name: str
) -> None:
    receiver = Receiver(fail_first=True)
    journeys = [f"j{i}" for i in range(8)]
    sent = [alert("maintenance", j) for j in journeys]
    sent.append(alert("maintenance", "j3"))  # the worker re-sent one after a restart
    sent.append(alert("sales", "j9"))  # sales has no webhook: not delivered, not an error

    async def scenario() -> AlertDelivery:
        async with serving(receiver) as url:
            settings = settings_for(bootstrap_servers, unique_name, {"maintenance": url})
            await publish(settings, sent)
            delivery = AlertDelivery(settings, parse_webhooks(
                settings.alert_webhooks.get_secret_value(), "test"))  # type: ignore[union-attr]  # fmt: skip
            metrics.update(
                await run_until(delivery, lambda: len(receiver.accepted) == len(journeys))
            )
            assert await committed(settings) == len(sent)
            return delivery

    metrics: dict[tuple[str, str], float] = {}
    delivery = asyncio.run(scenario())
    keys = {idempotency_key(a["alert_id"]) for a in sent if a["department"] == "maintenance"}
    assert set(receiver.accepted) == keys
    # Once per key: the copy of j3 the worker sent again is not delivered twice.
    assert receiver.accepted[idempotency_key("promise_broken:j3:ref-j3")] == 1
    assert delivery.counts["duplicates"] == 1
    assert set(receiver.accepted.values()) == {1}
    assert receiver.bad_signatures == 0
    first_attempts = [attempt for _, attempt in receiver.attempts[: len(keys)]]
    assert set(first_attempts) == {1}
    assert {a for _, a in receiver.attempts} == {1, 2}  # every key failed once, then retried
    assert receiver.bodies[idempotency_key("promise_broken:j0:ref-j0")]["journey_id"] == "j0"
    assert delivery.counts["no_webhook"] == 1
    assert delivery.counts["dead_lettered"] == 0
    # Its /metrics page, scraped while it ran: per department, sales has no webhook.
    assert metrics[("journeys_alerts_delivered_total", "maintenance")] == len(journeys)
    assert metrics[("journeys_alerts_retried_total", "maintenance")] == len(journeys)
    assert metrics[("journeys_alerts_dead_lettered_total", "maintenance")] == 0
    assert metrics[("journeys_alerts_delivery_seconds_count", "maintenance")] == len(journeys)
    assert metrics[("journeys_alerts_delivery_seconds_sum", "maintenance")] > 0
    assert ("journeys_alerts_delivered_total", "sales") not in metrics


def test_a_receiver_down_or_refusing_ends_in_the_dead_letter_topic_with_the_reason(
    bootstrap_servers: str, unique_name: str
) -> None:
    refusing = Receiver(status=410)
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there

    async def scenario() -> tuple[AlertDelivery, list[tuple[bytes, dict[str, Any]]], int]:
        async with serving(refusing) as gone:
            settings = settings_for(
                bootstrap_servers, unique_name, {"maintenance": down, "billing": gone},
                alert_delivery_attempts=3,
            )  # fmt: skip
            await publish(settings, [alert("maintenance", "j1"), alert("billing", "j2")])
            delivery = AlertDelivery(settings, parse_webhooks(
                settings.alert_webhooks.get_secret_value(), "test"))  # type: ignore[union-attr]  # fmt: skip
            metrics.update(await run_until(delivery, lambda: delivery.counts["dead_lettered"] == 2))
            letters = await dead_letters(settings, 2)
            return delivery, letters, await committed(settings)

    metrics: dict[tuple[str, str], float] = {}
    delivery, letters, offsets = asyncio.run(scenario())
    assert offsets == 2
    by_department = {letter["department"]: (reason, letter) for reason, letter in letters}
    reason, letter = by_department["maintenance"]
    assert letter["attempts"] == 3 and letter["last_status"] is None
    assert letter["url"] == down and letter["alert"]["journey_id"] == "j1"
    assert b"after 3 attempts (the last)" in reason and down.encode() in reason
    assert letter["reason"] == reason.decode()
    reason, letter = by_department["billing"]
    assert letter["attempts"] == 1 and letter["last_status"] == 410
    assert b"refused the alert (HTTP 410: gone); not retried" in reason
    assert len(refusing.attempts) == 1 and delivery.counts["delivered"] == 0
    # Scraped while it ran: the dead receiver's alert was retried twice (3 attempts), the
    # refusing one not at all; both dead-lettered, none delivered.
    assert metrics[("journeys_alerts_retried_total", "maintenance")] == 2
    assert metrics[("journeys_alerts_retried_total", "billing")] == 0
    assert metrics[("journeys_alerts_dead_lettered_total", "maintenance")] == 1
    assert metrics[("journeys_alerts_dead_lettered_total", "billing")] == 1
    assert metrics[("journeys_alerts_delivered_total", "billing")] == 0
    assert metrics[("journeys_alerts_delivery_seconds_count", "maintenance")] == 0


def test_alerts_in_flight_at_a_stop_are_sent_again_at_the_next_start(
    bootstrap_servers: str, unique_name: str
) -> None:
    """A stop commits only past what was delivered: the alert still being retried when
    the delivery stopped arrives after the restart, under the same idempotency key, and
    the delivered ones are not sent again."""
    receiver = Receiver()
    failing: set[str] = {idempotency_key("promise_broken:j2:ref-j2")}
    original = receiver.handle

    async def handle(request: web.Request) -> web.Response:
        if request.headers[IDEMPOTENCY_HEADER] in failing:
            return web.Response(status=503)  # j2's receiver is down until the restart
        return await original(request)

    receiver.handle = handle  # type: ignore[method-assign]
    sent = [alert("maintenance", j) for j in ("j1", "j2", "j3")]

    async def scenario() -> None:
        async with serving(receiver) as url:
            settings = settings_for(
                bootstrap_servers, unique_name, {"maintenance": url},
                alert_delivery_attempts=30, worker_stop_seconds=0.5,
            )  # fmt: skip
            webhooks = parse_webhooks(settings.alert_webhooks.get_secret_value(), "test")  # type: ignore[union-attr]
            await publish(settings, sent)
            first = AlertDelivery(settings, webhooks)
            await run_until(first, lambda: len(receiver.accepted) == 2)
            assert first.counts["delivered"] == 2 and first.counts["dead_lettered"] == 0
            assert await committed(settings) < len(sent)  # not past j2, still in flight
            failing.clear()  # the receiver is back
            second = AlertDelivery(settings, webhooks)
            await run_until(second, lambda: len(receiver.accepted) == 3)
            assert await committed(settings) == len(sent)

    asyncio.run(scenario())
    assert set(receiver.accepted) == {idempotency_key(a["alert_id"]) for a in sent}
    # One partition (alerts are keyed by department): the commit stayed at j2, so j3,
    # delivered after it, is offered again under its key (a receiver keeps it once); j1,
    # before it, is not; j2 arrives once, after the restart.
    accepted = {j: receiver.accepted[idempotency_key(f"promise_broken:{j}:ref-{j}")]
                for j in ("j1", "j2", "j3")}  # fmt: skip
    assert accepted == {"j1": 1, "j2": 1, "j3": 2}
