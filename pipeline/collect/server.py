"""Running the collector: build it from settings, serve until SIGTERM or Ctrl-C, close.

A stop first stops accepting connections, then lets requests in progress finish (they wait
for Kafka's acknowledgement at most JOURNEYS_COLLECTOR_ACK_TIMEOUT_SECONDS), then closes the
producer, which sends what it holds.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from pipeline.collect.app import Collector, Limits
from pipeline.collect.auth import tokens_from_settings
from pipeline.collect.limits import RateLimiter
from pipeline.collect.publish import DryRunPublisher, KafkaPublisher, Publisher
from pipeline.contract import Validator
from pipeline.settings import Settings


def build_collector(settings: Settings, *, dry_run: bool = False) -> Collector:
    """The collector the settings describe (TokenConfigError when its tokens are wrong)."""
    publisher: Publisher = DryRunPublisher() if dry_run else KafkaPublisher(settings)
    return Collector(
        tokens=tokens_from_settings(settings),
        validator=Validator.from_settings(settings),
        limiter=RateLimiter(
            settings.collector_rate_events_per_second, settings.collector_rate_burst_events
        ),
        publisher=publisher,
        limits=Limits(
            max_body_bytes=settings.collector_max_body_bytes,
            max_events=settings.collector_max_events,
            max_pending_events=settings.collector_max_pending_events,
            max_message_bytes=settings.kafka_max_message_bytes,
        ),
    )


async def serve(
    collector: Collector,
    host: str,
    port: int,
    *,
    grace: float,
    ready: Callable[[str], None] = lambda _url: None,
) -> None:
    """Serve until SIGTERM or SIGINT. Raises what the start raises: OSError for a taken
    port, KafkaError when Kafka cannot be reached."""
    # access_log None: a log line per request costs a tenth of the collector's time at
    # 50 requests/s, and an access log is where a token would leak first.
    runner = web.AppRunner(collector.application(), access_log=None, shutdown_timeout=grace)
    await runner.setup()  # on_startup: the producer connects here
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        ready(f"http://{host}:{port}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    finally:
        await runner.cleanup()
