"""`journeys run`: the stream worker in the foreground (as `faust -A pipeline.app worker`)."""

from __future__ import annotations

import click

from pipeline.cli.common import errors_as_exit, settings_or_exit
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
    """Run the stream worker: touchpoints in, journey scores into ClickHouse."""
    settings = settings_or_exit()
    if settings.clickhouse_mode == "embedded":
        # Before Faust starts: from inside its startup the same error is a page of traceback.
        with errors_as_exit(StoreError):
            require_embedded_engine()
    from pipeline.contract.tokens import TokenConfigError
    from pipeline.stream.worker import JourneysWorker, create_app

    with errors_as_exit(TokenConfigError):
        app = create_app(settings)
    JourneysWorker(app, loglevel=loglevel).execute_from_commandline()
