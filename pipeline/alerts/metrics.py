"""The alert delivery's counters, in Prometheus text format (prometheus-client), as the
collector's and the worker's are, served on JOURNEYS_ALERT_DELIVERY_METRICS_PORT.

Per department: alerts delivered, retried (each attempt after the first) and
dead-lettered, attempts that failed at once against a receiver known to be down, whether it
is down (its circuit open), and the seconds from an alert taken off the topic to its
receiver's 2xx (every attempt and back-off wait included). The label set is the configured
departments (those with a webhook), so it cannot grow with the input.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Seconds from an alert taken to delivered: one quick answer, up to a day of retries.
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class DeliveryMetrics:
    def __init__(self) -> None:
        # One registry per delivery: tests run several in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.delivered = Counter("journeys_alerts_delivered", "Alerts a department's webhook "
                                 "answered 2xx, by department.", ["department"],
                                 registry=r)  # fmt: skip
        self.retried = Counter("journeys_alerts_retried", "Webhook attempts after an alert's "
                               "first (a timeout, no answer, 408, 425, 429 or 5xx before), by "
                               "department.", ["department"], registry=r)  # fmt: skip
        self.dead_lettered = Counter("journeys_alerts_dead_lettered", "Alerts written to the "
                                     "alert dead-letter topic after the last attempt or a "
                                     "refusal, by department ('' for an unreadable alert).",
                                     ["department"], registry=r)  # fmt: skip
        self.short_circuited = Counter("journeys_alerts_short_circuited", "Webhook attempts "
                                       "that failed at once, unsent, because the department's "
                                       "receiver is down (its circuit open), by department.",
                                       ["department"], registry=r)  # fmt: skip
        self.receiver_down = Gauge("journeys_alerts_receiver_down", "1 while the department's "
                                   "circuit is open: its receiver gave no HTTP answer to "
                                   "JOURNEYS_ALERT_DELIVERY_BREAKER_FAILURES attempts in a row "
                                   "and no probe has been answered since; else 0.",
                                   ["department"], registry=r)  # fmt: skip
        self.seconds = Histogram("journeys_alerts_delivery_seconds", "Seconds from an alert "
                                 "taken off the alerts topic to its webhook's 2xx, retries and "
                                 "back-off included, by department.", ["department"],
                                 buckets=DELIVERY_BUCKETS, registry=r)  # fmt: skip

    def start(self, departments: list[str]) -> None:
        """Every department's series from 0, so a rate() sees its first delivery."""
        for department in departments:
            for counter in (self.delivered, self.retried, self.dead_lettered,
                            self.short_circuited):  # fmt: skip
                counter.labels(department)
            self.receiver_down.labels(department).set(0)
            self.seconds.labels(department)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, host: str, port: int) -> web.AppRunner:
        """`GET /metrics` on host:port until the returned runner is cleaned up."""

        async def metrics(_request: web.Request) -> web.Response:
            response = web.Response(body=self.text())
            # The text format generate_latest writes (CONTENT_TYPE_LATEST names a newer one).
            response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
            return response

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner
