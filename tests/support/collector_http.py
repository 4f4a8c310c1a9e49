"""The collector's aiohttp application served on loopback from a thread, for tests that
speak HTTP to it with a plain client (http.client, raw sockets) and no event loop of their
own. The publisher is in-memory: it keeps what would go to Kafka, or fails as Kafka would.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pipeline.collect import Collector, KafkaUnavailable, Limits
from pipeline.collect.auth import parse_tokens
from pipeline.collect.batch import Accepted
from pipeline.collect.limits import RateLimiter
from pipeline.collect.publish import DeadLetter
from pipeline.contract import Validator
from pipeline.kafka.local import free_port

TOKENS = {"billing-token-1": ["billing"], "ops-token-2": ["*"]}


@dataclass
class MemoryPublisher:
    """Keeps what was published; `fail` makes the next publishes raise as Kafka would."""

    events: list[Accepted] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    fail: str | None = None
    pending: int = 0

    async def start(self) -> None:
        return None

    async def publish(self, events: Sequence[Accepted], dead_letters: Sequence[DeadLetter]) -> None:
        if self.fail:
            raise KafkaUnavailable(self.fail)
        self.events.extend(events)
        self.dead_letters.extend(dead_letters)

    async def stop(self) -> None:
        return None


def collector(
    publisher: MemoryPublisher, *, rate: float = 1e9, burst: float = 1e9, **limits: int
) -> Collector:
    """A collector of TOKENS with small limits (overridden by `limits`)."""
    chosen = {"max_body_bytes": 64 * 1024, "max_events": 50, "max_pending_events": 1000,
              "max_message_bytes": 1 << 20} | limits  # fmt: skip
    return Collector(
        tokens=parse_tokens(json.dumps(TOKENS), "tokens"),
        validator=Validator(),
        limiter=RateLimiter(rate, burst),
        publisher=publisher,
        limits=Limits(**chosen),
    )


class CollectorThread:
    """`with CollectorThread(collector) as server:` serves on 127.0.0.1:server.port."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> CollectorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.collector.application(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request on a connection of its own."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def post(
        self, body: bytes, token: str | None = "billing-token-1",
        content_type: str = "application/x-ndjson", **headers: str,
    ) -> tuple[int, dict[str, str], Any]:  # fmt: skip
        """POST /v1/touchpoints; the answer's JSON decoded."""
        sent = {"Content-Type": content_type, **headers}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        status, answered, raw = self.request("POST", "/v1/touchpoints", body, sent)
        return status, answered, json.loads(raw)
