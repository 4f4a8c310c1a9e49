"""`journeys run`: the stream worker in the foreground (as `faust -A pipeline.app worker`)."""

from __future__ import annotations

import asyncio

import click

from pipeline.cli.common import errors_as_exit, kafka_hint, say, settings_or_exit, stop_signals
from pipeline.settings import Settings
from pipeline.store import StoreError, require_embedded_engine


@click.command()
@click.option(
    "--loglevel",
    "-l",
    type=click.Choice(["critical", "error", "warning", "info", "debug"], case_sensitive=False),
    default="info",
    show_default=True,
    help="Least severe log records shown.",
)
def run(loglevel: str) -> None:
    """Run the stream worker: touchpoints in, journey scores into ClickHouse.

    Started before its Kafka broker answers, the worker waits for it (saying so), and a
    stop while it waits exits 0: nothing was taken yet.
    """
    settings = settings_or_exit()
    if settings.clickhouse_mode == "embedded":
        # Before Faust starts: from inside its startup the same error is a page of traceback.
        with errors_as_exit(StoreError):
            require_embedded_engine()
    answered = asyncio.run(_kafka_answers(settings))
    if answered is None:
        say("stopped while waiting for Kafka; nothing was taken")
        return
    if answered != settings.bootstrap_servers:
        settings = settings_or_exit()  # the local broker started meanwhile, on its own port
    from pipeline.contract.tokens import TokenConfigError
    from pipeline.stream.worker import JourneysWorker, create_app

    with errors_as_exit(TokenConfigError):
        app = create_app(settings)
    JourneysWorker(app, loglevel=loglevel).execute_from_commandline()


async def _kafka_answers(settings: Settings) -> str | None:
    """The address of the Kafka that answered; None after SIGTERM or Ctrl-C while waiting.

    Before Faust starts: from inside its startup an absent broker is a traceback and exit 1,
    and the local broker's address (a free port, found at each attempt) is fixed there.
    """
    from pipeline.kafka.reach import answers, wait_until_reachable

    options = settings.aiokafka_client_options()
    options.pop("bootstrap_servers")
    timeout = settings.kafka_connect_timeout_seconds

    async def probe(address: str) -> None:
        await answers(address, timeout, **options)

    waiting = asyncio.current_task()
    assert waiting is not None
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        waiting.cancel()

    with stop_signals(stop):
        try:
            # Settings anew at each attempt: `bootstrap_servers` is the local broker's
            # address as found when first asked.
            return await wait_until_reachable(
                lambda: settings_or_exit().bootstrap_servers, probe, say, hint=kafka_hint(settings)
            )
        except asyncio.CancelledError:
            if not stopped:
                raise
            return None
