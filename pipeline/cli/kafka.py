"""`journeys kafka start|stop|status`: the local single-node Apache Kafka broker."""

from __future__ import annotations

import click

from pipeline.cli.common import Group, errors_as_exit, out, say, settings_or_exit
from pipeline.kafka import BrokerAlreadyRunning, LocalBroker, LocalBrokerError
from pipeline.settings import Settings


def local_broker(settings: Settings) -> LocalBroker:
    return LocalBroker(
        settings.kafka_home,
        settings.kafka_jars_dir,
        preferred_port=settings.kafka_local_port,
        heap=settings.kafka_local_heap,
    )


@click.group(cls=Group)
def kafka() -> None:
    """Run a local Apache Kafka broker (KRaft, one node) for development."""


@kafka.command()
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for it.")
def start(timeout: float) -> None:
    """Start the broker (resolving its jars with Maven on the first start)."""
    broker = local_broker(settings_or_exit())
    try:
        state = broker.start(timeout=timeout, say=say)
    except BrokerAlreadyRunning as exc:
        out.print(f"{exc}; not starting another")
        return
    except LocalBrokerError as exc:
        with errors_as_exit(LocalBrokerError):
            raise exc
    out.print(
        f"Kafka broker running at [bold]{state.bootstrap_servers}[/] (pid {state.pid}); "
        f"log: {broker.log_file}"
    )


@kafka.command()
def stop() -> None:
    """Stop the broker; its messages are kept for the next start."""
    broker = local_broker(settings_or_exit())
    with errors_as_exit(LocalBrokerError):
        state = broker.stop()
    out.print(f"Kafka broker stopped (was pid {state.pid} at {state.bootstrap_servers})")


@kafka.command()
def status() -> None:
    """Say whether the broker runs, where, and where it logs. Exit 3 when it does not run."""
    broker = local_broker(settings_or_exit())
    state = broker.state()
    if state is None:
        out.print("Kafka broker is not running")
        raise SystemExit(3)
    out.print(
        f"Kafka broker running at {state.bootstrap_servers} (pid {state.pid}); "
        f"data: {broker.log_dir}; log: {broker.log_file}"
    )


@kafka.command()
def fetch() -> None:
    """Resolve and cache the broker's jars now (what the first start would do)."""
    from pipeline.kafka import ensure_jars

    settings = settings_or_exit()
    with errors_as_exit(LocalBrokerError):
        path = ensure_jars(settings.kafka_jars_dir, say)
    out.print(f"Kafka jars ready in {path}")
