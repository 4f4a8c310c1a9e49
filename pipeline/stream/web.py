"""The worker's counters on Faust's web server: `/metrics` (Prometheus) and `/metrics.json`."""

from __future__ import annotations

from typing import Any

from pipeline.stream.metrics import Metrics


def add_views(app: Any, metrics: Metrics) -> None:
    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.text(metrics.prometheus(), content_type="text/plain; version=0.0.4")

    @app.page("/metrics.json")
    async def as_json(web: Any, request: Any) -> Any:
        return web.json(metrics.as_dict())
