"""Issue 22 and alert delivery, on the real broker: alerts already on the alerts topic of
customers erased afterwards are not POSTed. The delivery learns the erasures from the
erasures topic, as the worker publishes them there (`encode_erased`, `encode_reply`): in
embedded mode it could not open the ledger table while the worker runs. It sends nothing
before it has read a whole snapshot of the ledger, so no earlier erasure is unknown to it."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from pipeline.alerts import parse_webhooks
from pipeline.alerts.deliver import AlertDelivery
from pipeline.alerts.signing import idempotency_key
from pipeline.settings import Settings
from pipeline.store.erasure import (
    ErasureOutcome,
    customer_hash,
    encode_erased,
    encode_reply,
)
from tests.integration.test_alert_delivery import (
    Receiver,
    alert,
    committed,
    publish,
    serving,
    settings_for,
)

SALT = "test-salt-0123456789abcdef"


async def erasures(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(settings.topic_erasures, value, key=key, partition=0)
    finally:
        await producer.stop()


def test_alerts_of_customers_erased_afterwards_are_not_sent(
    bootstrap_servers: str, unique_name: str
) -> None:
    receiver = Receiver()
    journeys = [f"j{i}" for i in range(6)]
    sent = [alert("maintenance", j) for j in journeys]  # customer c-<journey>
    hashed = {j: customer_hash(SALT, f"c-{j}") for j in journeys}

    async def scenario() -> AlertDelivery:
        async with serving(receiver) as url:
            topic = f"{unique_name}.erasures"
            settings = settings_for(bootstrap_servers, unique_name, {"maintenance": url},
                                    erasure_salt=SALT, topic_erasures=topic)  # fmt: skip
            await publish(settings, sent)
            # Erased after their alerts were published: c-j2 as the worker adds it to its
            # ledger, c-j3 in the worker's reply to `journeys erase`.
            await erasures(settings, encode_erased({hashed["j2"]}, None))
            delivery = AlertDelivery(settings, parse_webhooks(
                settings.alert_webhooks.get_secret_value(), "test"))  # type: ignore[union-attr]  # fmt: skip
            stop = asyncio.Event()
            task = asyncio.create_task(delivery.run(stop))
            await asyncio.sleep(3)  # no snapshot of the ledger yet: nothing is sent
            assert not receiver.attempts and not delivery.counts, delivery.counts
            reply = ErasureOutcome("c-j3", hashed["j3"], {"touchpoints": 1}, False)
            # A worker's snapshot of its whole ledger: c-j1, erased long before.
            await erasures(settings, [encode_reply("r1", [reply]),
                                      *encode_erased({hashed["j1"]}, "snap-1")])  # fmt: skip
            for _ in range(300):
                if len(receiver.accepted) == 3 and delivery.counts["erased_skipped"] == 3:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # long enough for a stray POST to show, and a commit
            stop.set()
            await task
            assert await committed(settings) == len(sent)  # the skipped ones committed past
            return delivery

    delivery = asyncio.run(scenario())
    delivered = {idempotency_key(f"promise_broken:{j}:ref-{j}") for j in ("j0", "j4", "j5")}
    assert set(receiver.accepted) == delivered
    assert {key for key, _ in receiver.attempts} == delivered  # never tried, not only refused
    assert delivery.counts["erased_skipped"] == 3 and delivery.counts["delivered"] == 3
