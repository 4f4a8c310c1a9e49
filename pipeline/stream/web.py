"""The worker's pages on Faust's web server.

`/healthz` (the process answers), `/readyz` (it does its job: `pipeline.stream.readiness`),
`/metrics` (Prometheus text) and `/metrics.json` (the same counters for scripts); and the
context API, `/v1/journeys/{journey_id}` and `/v1/customers/{customer_id}/journeys`
(`pipeline.stream.context`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from pipeline.stream import readiness
from pipeline.stream.context import ANSWERED_BY, FORWARDED, ContextAPI, Reply, refusal
from pipeline.stream.metrics import Metrics

# The text format generate_latest() writes; aiohttp refuses a charset inside content_type,
# so prometheus-client's own CONTENT_TYPE_LATEST cannot be passed as is.
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
# A context question asked with a reading token: (Authorization, X-Journeys-Forwarded).
Ask = Callable[[str, str | None], Awaitable[Reply]]


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


def add_context_views(app: Any, api: ContextAPI, metrics: Metrics) -> None:
    """The context API: read-only, a reading department's bearer token on every request."""

    def answer(web: Any, reply: Reply) -> Any:
        if reply.status >= 400:
            metrics.add("context_refused")
        elif reply.headers.get(ANSWERED_BY) == api.me():
            metrics.add("context_answered")
        else:  # another worker's state answered
            metrics.add("context_forwarded")
        return _answer(web, reply)

    async def authorized(web: Any, request: Any, ask: Ask) -> Any:
        """`ask`'s reply for a request with a reading token, else the refusal (the token is
        checked before anything else of the request is looked at)."""
        authorization = request.headers.get("Authorization")
        allowed = api.authorize(authorization)
        if isinstance(allowed, Reply):
            return answer(web, allowed)
        return answer(web, await ask(authorization, request.headers.get(FORWARDED)))

    @app.page("/v1/journeys/{journey_id:.+}")
    async def journey(web: Any, request: Any, journey_id: str) -> Any:
        return await authorized(web, request, functools.partial(api.journey, journey_id))

    @app.page("/v1/customers/{customer_id:.+}/journeys")
    async def customer(web: Any, request: Any, customer_id: str) -> Any:
        async def ask(authorization: str, forwarded: str | None) -> Reply:
            open_only = _flag(request.query.get("open", "false"))
            if open_only is None:
                return refusal(400, "bad_query", "open: expected true or false, got "
                               f"{request.query.get('open')!r:.40}")  # fmt: skip
            return await api.customer(customer_id, open_only, authorization, forwarded)

        return await authorized(web, request, ask)


def _answer(web: Any, reply: Reply) -> Any:
    # orjson: a journey's context is tens of kilobytes, and Faust's json is the stdlib's.
    return web.bytes(orjson.dumps(reply.body), content_type="application/json",
                     status=reply.status, headers=reply.headers or None)  # fmt: skip


def _flag(value: str) -> bool | None:
    return {"true": True, "1": True, "false": False, "0": False}.get(value.lower())
