"""The collector's HTTP application (aiohttp): routes, and the order of a request's checks.

aiohttp, not an ASGI server: measured on this project's 2-core machine, aiohttp, uvicorn
(httptools, uvloop; raw ASGI or Starlette) and granian all answered 200,000-290,000
events/s of 500-event POSTs with validation and no Kafka, within one another's noise, ten
times the collector's target; the cost that matters is Kafka's (`publish`). aiohttp is
already installed with Faust, so the collector adds no server dependency.

A request to POST /v1/touchpoints is checked in this order, each failure answered at once:
token (401), media type (415), declared size (413; before the body is read, and before
"100 Continue" for a client that asks), body read (413 past the limit), events in it (400
none, 413 too many), the token's rate (429), Kafka's backlog (503). Then each event is
judged, the accepted ones and the dead letters are published, and the answer waits for
Kafka's acknowledgement (503 when it does not come in time).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from pipeline.collect import batch
from pipeline.collect.auth import Grant, Tokens
from pipeline.collect.dead_letters import dead_letter
from pipeline.collect.exceptions import KafkaUnavailable
from pipeline.collect.limits import RateLimiter, retry_after
from pipeline.collect.metrics import CollectorMetrics
from pipeline.collect.openapi import openapi_json
from pipeline.collect.publish import Publisher
from pipeline.contract import Validator

log = logging.getLogger("pipeline.collect")

PATH = "/v1/touchpoints"
JSON = "application/json"
KAFKA_RETRY_AFTER = 5  # seconds: Kafka's own retries and a leader election take about this


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_events: int
    max_pending_events: int
    max_message_bytes: int  # the dead-letter topic's: a dead letter is cut to fit


class Collector:
    """What a request needs: tokens, validator, rate limiter, publisher, metrics."""

    def __init__(
        self,
        tokens: Tokens,
        validator: Validator,
        limiter: RateLimiter,
        publisher: Publisher,
        limits: Limits,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.tokens = tokens
        self.validator = validator
        self.limiter = limiter
        self.publisher = publisher
        self.limits = limits
        self.metrics = metrics or CollectorMetrics()
        self.openapi = openapi_json(limits.max_body_bytes, limits.max_events)

    def application(self) -> web.Application:
        # client_max_size: aiohttp refuses a body past it while reading (chunked uploads).
        app = web.Application(client_max_size=self.limits.max_body_bytes)
        app.router.add_post(PATH, self.touchpoints, expect_handler=self.expect)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/openapi.json", self.openapi_document)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        await self.publisher.start()

    async def _stop(self, _app: web.Application) -> None:
        await self.publisher.stop()

    # --- POST /v1/touchpoints -----------------------------------------------------------
    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """`Expect: 100-continue`: refuse before the client sends a body it need not."""
        checked = self._admit(request)
        if isinstance(checked, web.Response):
            return checked
        if request.headers.get("Expect", "").lower() != "100-continue":
            return self._error("unsupported_expectation", 417, "Expect: only 100-continue")
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim answer is no part of the response
        return None

    async def touchpoints(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        checked = self._admit(request)
        if isinstance(checked, web.Response):
            return checked
        grant = checked
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        kind = batch.media_kind(request.headers.get("Content-Type"))
        assert kind is not None  # _admit checked it
        events = batch.split_events(body, kind)
        refusal = self._refuse_events(grant, len(events))
        if refusal is not None:
            return refusal
        verdicts = batch.judge(events, self.validator, grant)
        request_id = uuid.uuid4().hex
        letters = [
            dead_letter(r.raw, r.rejection, request_id=request_id, line=r.line,
                        departments=grant.describe(),
                        max_message_bytes=self.limits.max_message_bytes)
            for r in verdicts.refused
        ]  # fmt: skip
        try:
            await self.publisher.publish(verdicts.accepted, letters)
        except KafkaUnavailable as error:
            log.warning("answered 503: %s (request %s, %d events)", error, request_id,
                        len(events))  # fmt: skip
            self.metrics.unavailable(len(events))
            return self._error("kafka_unavailable", 503, str(error), KAFKA_RETRY_AFTER)
        self.metrics.judged(
            Counter(event.department for event in verdicts.accepted),
            Counter(refused.rejection.code for refused in verdicts.refused),
        )
        status, answer = batch.answer(verdicts)
        self.metrics.seconds.observe(time.perf_counter() - started)
        self.metrics.answered(status)
        return web.Response(body=answer, status=status, content_type=JSON,
                            headers={"X-Request-Id": request_id})  # fmt: skip

    def _admit(self, request: web.Request) -> Grant | web.Response:
        """The checks that need no body: token, media type, declared size."""
        grant = self.tokens.authenticate(request.headers.get("Authorization"))
        if grant is None:
            return self._error(
                "unauthorized", 401,
                "Authorization: expected `Bearer TOKEN` with a token the collector knows",
                headers={"WWW-Authenticate": 'Bearer realm="journeys"'},
            )  # fmt: skip
        content_type = request.headers.get("Content-Type")
        if batch.media_kind(content_type) is None:
            shown = repr(content_type[:80]) if content_type else "none"
            return self._error(
                "unsupported_media_type", 415,
                f"Content-Type: got {shown}, expected application/json (one touchpoint) or "
                "application/x-ndjson (JSON Lines)",
            )  # fmt: skip
        length = request.content_length
        if length is not None and length > self.limits.max_body_bytes:
            return self._too_large(length)
        return grant

    def _refuse_events(self, grant: Grant, count: int) -> web.Response | None:
        """The checks on the number of events: none, too many, rate, Kafka's backlog."""
        if count == 0:
            return self._error("no_events", 400, "body: no event (only blank lines), expected "
                               "one JSON touchpoint per line")  # fmt: skip
        if count > self.limits.max_events:
            return self._error(
                "too_many_events", 413,
                f"body: {count} events, expected at most {self.limits.max_events} per request "
                "(JOURNEYS_COLLECTOR_MAX_EVENTS): split it",
            )  # fmt: skip
        wait = self.limiter.take(grant.index, count, time.monotonic())
        if wait:
            return self._error(
                "rate_limited", 429,
                f"{count} events exceed this token's rate of "
                f"{self.limiter.rate:g} events/s (burst {self.limiter.burst:g}); "
                f"retry after {retry_after(wait)} s",
                retry_after(wait),
            )  # fmt: skip
        pending = self.publisher.pending
        if pending and pending + count > self.limits.max_pending_events:
            return self._error(
                "overloaded", 503,
                f"{pending} events wait for Kafka's acknowledgement "
                f"(JOURNEYS_COLLECTOR_MAX_PENDING_EVENTS: {self.limits.max_pending_events})",
                1,
            )  # fmt: skip
        return None

    def _too_large(self, length: int | None = None) -> web.Response:
        got = f"{length} bytes" if length is not None else "more bytes"
        return self._error(
            "too_large", 413,
            f"body: {got}, expected at most {self.limits.max_body_bytes} bytes "
            "(JOURNEYS_COLLECTOR_MAX_BODY_BYTES): split it into several requests",
        )  # fmt: skip

    def _error(
        self,
        code: str,
        status: int,
        reason: str,
        retry: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.metrics.answered(status)
        headers = dict(headers or {})
        if retry is not None:
            headers["Retry-After"] = str(retry)
        return web.Response(body=batch.error(code, reason), status=status, content_type=JSON,
                            headers=headers)  # fmt: skip

    # --- the rest -----------------------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(body=b'{"status": "ok"}', content_type=JSON)

    async def prometheus(self, _request: web.Request) -> web.Response:
        self.metrics.pending.set(self.publisher.pending)
        response = web.Response(body=self.metrics.text())
        # The text format generate_latest writes (CONTENT_TYPE_LATEST names a newer one).
        response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
        return response

    async def openapi_document(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.openapi, content_type=JSON)
