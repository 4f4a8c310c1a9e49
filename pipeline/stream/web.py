"""The worker's pages on Faust's web server.

`/healthz` (the process answers), `/readyz` (it does its job: `pipeline.stream.readiness`),
`/metrics` (Prometheus text) and `/metrics.json` (the same counters for scripts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pipeline.stream import readiness
from pipeline.stream.metrics import Metrics

# The text format generate_latest() writes; aiohttp refuses a charset inside content_type,
# so prometheus-client's own CONTENT_TYPE_LATEST cannot be passed as is.
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


def add_views(
    app: Any,
    metrics: Metrics,
    limits: readiness.Limits,
    store_open: Callable[[], bool],
    ping_kafka: Callable[[], Awaitable[Any]],
) -> None:
    @app.page("/healthz")
    async def alive(web: Any, request: Any) -> Any:
        return web.json({"alive": True})

    @app.page("/readyz")
    async def ready(web: Any, request: Any) -> Any:
        checks = {
            "kafka": await readiness.kafka_check(ping_kafka),
            "store": readiness.store_check(metrics, store_open()),
            "flush": readiness.flush_check(metrics, limits),
            "lag": readiness.lag_check(metrics, limits),
        }
        status, body = readiness.verdict(checks)
        return web.json(body, status=status)

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.text(metrics.prometheus(), content_type=PROMETHEUS_TEXT)

    @app.page("/metrics.json")
    async def as_json(web: Any, request: Any) -> Any:
        return web.json(metrics.as_dict())
