"""`journeys collect`: the HTTP collector in the foreground."""

from __future__ import annotations

import asyncio
import logging

import click

from pipeline.cli.common import fail, kafka_unreachable, say, settings_or_exit
from pipeline.stream.logs import RepeatLimiter

EXIT_UNREACHABLE = 3  # as `journeys emit`: Kafka could not be reached


@click.command()
@click.option(
    "--host",
    metavar="HOST",
    help="Address to listen on [default: JOURNEYS_COLLECTOR_HOST, 127.0.0.1].",
)
@click.option("--port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Port to listen on [default: JOURNEYS_COLLECTOR_PORT, 8080].")  # fmt: skip
@click.option("--dry-run", is_flag=True,
              help="Validate and answer, with no Kafka: for departments testing their "
              "integration.")  # fmt: skip
@click.option("--openapi", is_flag=True,
              help="Print the OpenAPI description of the endpoints (as served at "
              "/openapi.json) and exit.")  # fmt: skip
def collect(host: str | None, port: int | None, dry_run: bool, openapi: bool) -> None:
    """Serve the HTTP collector: POST /v1/touchpoints takes one JSON touchpoint, or JSON
    Lines (application/x-ndjson) of up to 10,000, from a department's bearer token
    (JOURNEYS_COLLECTOR_TOKENS), validates each event as `journeys emit` does and answers
    once Kafka acknowledged the accepted ones (202; 400 when every event was refused).
    Also GET /healthz, /metrics (Prometheus) and /openapi.json. Stops on SIGTERM or Ctrl-C
    after the requests in progress are answered."""
    settings = settings_or_exit()
    if openapi:
        from pipeline.collect.openapi import openapi_json

        limits = (settings.collector_max_body_bytes, settings.collector_max_events)
        click.echo(openapi_json(*limits), nl=False)
        return
    from aiokafka.errors import KafkaError

    from pipeline.collect import CollectorError, build_collector, serve

    try:
        collector = build_collector(settings, dry_run=dry_run)
    except CollectorError as error:
        fail(str(error), code=2)
    host = host or settings.collector_host
    port = port or settings.collector_port
    target = (
        "dry run: validated, nothing sent"
        if dry_run
        else f"to {settings.topic_touchpoints} at {settings.bootstrap_servers}"
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        # With the broker down, aiokafka says the same error ten times a second.
        handler.addFilter(RepeatLimiter())

    def ready(url: str) -> None:
        say(f"collecting on {url}/v1/touchpoints ({len(collector.tokens)} tokens), {target}")

    grace = settings.collector_ack_timeout_seconds + 2
    try:
        asyncio.run(serve(collector, host, port, grace=grace, ready=ready))
    except KafkaError as error:
        fail(kafka_unreachable(settings, error), EXIT_UNREACHABLE)
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another "
             "--port (or JOURNEYS_COLLECTOR_PORT)")  # fmt: skip
    say("collector stopped")
