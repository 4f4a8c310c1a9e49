"""A department's receiver that is down, then back, on the real broker: the circuit breaker
(`pipeline.alerts.breaker`) opens after JOURNEYS_ALERT_DELIVERY_BREAKER_FAILURES attempts
without an HTTP answer, the alerts that run out of attempts meanwhile end in the dead-letter
topic with the outage as the reason, and once the receiver listens again the first probe's
answer closes the circuit and the alerts still being retried reach it, each once per
idempotency key. The opening and the closing are logged once each and shown on /metrics.

Which alert fails when is set by the test, not by the clock: the second phase's alerts wait
at their first back-off (the delivery's `sleep`) until the receiver is listening."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from pipeline.alerts import parse_webhooks
from pipeline.alerts.deliver import AlertDelivery
from pipeline.alerts.signing import idempotency_key
from pipeline.kafka.local import free_port
from tests.integration.test_alert_delivery import (
    Receiver,
    alert,
    dead_letters,
    publish,
    scrape,
    settings_for,
)

DEPARTMENT = "maintenance"


async def until(done: Callable[[], bool], task: asyncio.Task[None], what: str) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert not task.done(), f"the delivery stopped: {task.exception()}"
        assert time.monotonic() < deadline, f"not within 60 s: {what}"
        await asyncio.sleep(0.05)


def test_a_receiver_down_dead_letters_with_the_outage_and_when_back_gets_the_rest(
    bootstrap_servers: str, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there until the receiver comes back
    url = f"http://127.0.0.1:{port}/hook"
    receiver = Receiver()
    during = [alert(DEPARTMENT, f"down-{n}") for n in range(6)]  # run out of attempts
    after = [alert(DEPARTMENT, f"back-{n}") for n in range(5)]  # still retried when it is back
    gate = {"closed": False, "waiting": 0}
    is_back = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if gate["closed"]:
            gate["waiting"] += 1
            await is_back.wait()
        else:
            await asyncio.sleep(seconds)

    async def scenario() -> tuple[dict[Any, float], dict[Any, float], list[Any], AlertDelivery]:
        settings = settings_for(
            bootstrap_servers, unique_name, {DEPARTMENT: url},
            alert_delivery_attempts=4, alert_delivery_breaker_failures=3,
        )  # fmt: skip
        webhooks = parse_webhooks(settings.alert_webhooks.get_secret_value(), "test")  # type: ignore[union-attr]
        delivery = AlertDelivery(settings, webhooks, sleep=sleep)
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop))
        runner = web.AppRunner(web.Application(), access_log=None)
        runner.app.router.add_post("/hook", receiver.handle)
        try:
            await publish(settings, during)
            await until(lambda: delivery.counts["dead_lettered"] == len(during), task,
                        "the first alerts dead-lettered")  # fmt: skip
            down = await scrape(settings)
            gate["closed"] = True  # the next alerts wait at their first back-off
            await publish(settings, after)
            await until(lambda: gate["waiting"] == len(after), task, "each failed once")
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()  # the receiver is back
            gate["closed"] = False
            is_back.set()
            await until(lambda: len(receiver.accepted) == len(after), task,
                        "the later alerts delivered")  # fmt: skip
            up = await scrape(settings)
        finally:
            stop.set()
            await task
            await runner.cleanup()
        return down, up, await dead_letters(settings, len(during)), delivery

    with caplog.at_level(logging.INFO, logger="pipeline.alerts"):
        down, up, letters, delivery = asyncio.run(scenario())
    # Down: every alert of the outage dead-lettered after its last attempt, the reason
    # naming the outage; none of them ever reached the receiver (it was not listening).
    assert sorted(letter["alert"]["journey_id"] for _, letter in letters) == sorted(
        a["journey_id"] for a in during
    )
    for reason, letter in letters:
        assert letter["attempts"] == 4 and letter["last_status"] is None
        assert b"receiver down since" in reason and b"circuit open" in reason, reason
        assert b"after 4 attempts (the last)" in reason and url.encode() in reason
    assert down[("journeys_alerts_receiver_down", DEPARTMENT)] == 1
    assert down[("journeys_alerts_short_circuited_total", DEPARTMENT)] > 0
    assert down[("journeys_alerts_dead_lettered_total", DEPARTMENT)] == len(during)
    # Back: the first probe's answer closed the circuit, and every alert still being
    # retried arrived, each once per idempotency key; none dead-lettered.
    assert dict(receiver.accepted) == {idempotency_key(a["alert_id"]): 1 for a in after}
    assert receiver.bad_signatures == 0
    assert up[("journeys_alerts_receiver_down", DEPARTMENT)] == 0
    assert up[("journeys_alerts_delivered_total", DEPARTMENT)] == len(after)
    assert delivery.counts["dead_lettered"] == len(during)
    # One line when it went down, one when it came back; none per dead letter.
    lines = [r.getMessage() for r in caplog.records
             if r.name == "pipeline.alerts" and r.levelno >= logging.WARNING]  # fmt: skip
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"webhook of {DEPARTMENT} down: receiver down since")
    assert lines[1].startswith(f"webhook of {DEPARTMENT} answers again (HTTP 200")
