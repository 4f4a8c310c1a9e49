"""`journeys alerts`: deliver the alerts topic to the departments' webhooks; test one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import (
    Group,
    fail,
    kafka_unreachable,
    out,
    say,
    settings_or_exit,
    stop_signals,
)
from pipeline.stream.logs import RepeatLimiter

if TYPE_CHECKING:
    from pipeline.alerts.deliver import AlertDelivery
    from pipeline.alerts.sender import Answer

EXIT_UNREACHABLE = 3  # as `journeys emit` and `journeys collect`: Kafka could not be reached


@click.group(cls=Group)
def alerts() -> None:
    """Alerts to departments: deliver them to each department's webhook, or test one."""


@alerts.command()
def deliver() -> None:
    """Deliver the alerts topic to the departments' webhooks (JOURNEYS_ALERT_WEBHOOKS):
    signed, retried with back-off, at least once with an idempotency key, dead-lettered to
    JOURNEYS_TOPIC_ALERT_DEAD_LETTERS with the reason after the last attempt. Runs beside
    the worker, in a consumer group of its own, so no receiver can slow the event path.
    Stops on SIGTERM or Ctrl-C; what was in flight is sent again at the next start."""
    from aiokafka.errors import KafkaError

    from pipeline.alerts import WebhookConfigError, webhooks_from_settings
    from pipeline.alerts.deliver import AlertDelivery

    settings = settings_or_exit()
    try:
        webhooks = webhooks_from_settings(settings)
    except WebhookConfigError as error:
        fail(str(error), code=2)
    if not webhooks:
        fail("no department has a webhook: set JOURNEYS_ALERT_WEBHOOKS (or _FILE)", code=2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatLimiter())
    delivery = AlertDelivery(settings, webhooks)

    def ready() -> None:
        names = ", ".join(sorted(webhooks))
        say(f"delivering {settings.topic_alerts} at {settings.bootstrap_servers} to {names}")
        if settings.alert_delivery_metrics_port:
            say(f"metrics on http://{settings.alert_delivery_metrics_host}:"
                f"{settings.alert_delivery_metrics_port}/metrics")  # fmt: skip

    try:
        asyncio.run(_until_signalled(delivery, ready))
    except KafkaError as error:
        fail(kafka_unreachable(settings, error), EXIT_UNREACHABLE)
    except OSError as error:  # the metrics port (taken, or an address not of this host)
        fail(f"cannot serve /metrics on {settings.alert_delivery_metrics_host}:"
             f"{settings.alert_delivery_metrics_port}: {error} (JOURNEYS_ALERT_DELIVERY_"
             "METRICS_PORT; 0 turns it off)", code=2)  # fmt: skip
    counts = ", ".join(f"{n} {what}" for what, n in sorted(delivery.counts.items()))
    say(f"alert delivery stopped ({counts or 'nothing delivered'})")


async def _until_signalled(delivery: AlertDelivery, ready: Callable[[], None]) -> None:
    stop = asyncio.Event()
    with stop_signals(stop.set):
        await delivery.run(stop, ready)


@alerts.command()
@click.option("--department", required=True, metavar="NAME",
              help="The department whose webhook gets the sample alert.")  # fmt: skip
def test(department: str) -> None:
    """Send one sample alert (kind "test"), signed as a real one, to a department's webhook
    and print the answer: status, body and time. One attempt, no retry; exits 1 unless the
    receiver answered 2xx."""
    from pipeline.alerts import WebhookConfigError, webhooks_from_settings
    from pipeline.alerts.payload import sample_alert
    from pipeline.alerts.sender import WebhookSender

    settings = settings_or_exit()
    try:
        webhooks = webhooks_from_settings(settings)
    except WebhookConfigError as error:
        fail(str(error), code=2)
    webhook = webhooks.get(department)
    if webhook is None:
        known = ", ".join(sorted(webhooks)) or "none"
        fail(f"--department {department!r} has no webhook in JOURNEYS_ALERT_WEBHOOKS "
             f"(departments with one: {known})", code=2)  # fmt: skip
    alert = sample_alert(department, datetime.now(UTC))

    async def send_once() -> Answer:
        sender = WebhookSender(settings.alert_delivery_timeout_seconds)
        await sender.start()
        try:
            return await sender.send(webhook, alert, attempt=1)
        finally:
            await sender.close()

    answer = asyncio.run(send_once())
    out.print(f"POST {webhook.shown_url}  (alert {alert.alert_id})", markup=False)
    if answer.status is None:
        out.print(f"no answer after {answer.seconds * 1000:.0f} ms: {answer.error}", markup=False)
        raise SystemExit(1)
    out.print(f"status {answer.status} in {answer.seconds * 1000:.0f} ms", markup=False)
    out.print(answer.body.decode("utf-8", "replace") or "(empty body)", markup=False)
    if not 200 <= answer.status < 300:
        raise SystemExit(1)
