"""`journeys demo`: the main job on embedded defaults (local broker + chdb)."""

from __future__ import annotations

import click

from pipeline.cli.common import errors_as_exit, out, say, settings_or_exit
from pipeline.cli.kafka import local_broker
from pipeline.kafka import BrokerAlreadyRunning, LocalBrokerError
from pipeline.store import StoreError, apply_migrations, get_store


@click.command()
def demo() -> None:
    """Start the local broker, migrate the embedded store, and say what is running."""
    settings = settings_or_exit()
    broker = local_broker(settings)
    with errors_as_exit(LocalBrokerError):
        try:
            state = broker.start(say=say)
        except BrokerAlreadyRunning:
            state = broker.state()  # type: ignore[assignment]
    with errors_as_exit(StoreError):
        apply_migrations(get_store(settings), say=say)
    out.print(f"Kafka broker: {state.bootstrap_servers} (pid {state.pid})")
    out.print(f"ClickHouse (chdb): {settings.clickhouse_dir.resolve()}")
    out.print("Stop the broker with: journeys kafka stop")
