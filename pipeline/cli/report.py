"""`journeys report`: the self-contained HTML report, from the public tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from pipeline.cli.common import errors_as_exit, fail, out, say, settings_or_exit, time_window
from pipeline.store import StoreError, get_store


@click.command("report")
@click.option(
    "--output",
    "-o",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write (replaced if it exists).",
)
@time_window(since="Start of the range in event time", until="End of the range in event time")
@click.option(
    "--department", "departments", multiple=True, help="Only this department (repeatable)."
)
@click.option(
    "--model",
    "model_version",
    metavar="VERSION",
    help="Show the journeys as this score model version scored them (a live version or one "
    "`journeys rescore` stored); default: the live model.",
)
def report(
    output: str,
    since: datetime | None,
    until: datetime | None,
    departments: tuple[str, ...],
    model_version: str | None,
) -> None:
    """Write the report: heatmap, trend, top breakdowns with example journeys, share beyond the
    front desk, word-of-mouth balance, rejected events per department. One HTML file that
    opens offline and prints well.

    In embedded mode the store belongs to the worker while it runs: stop it first.
    """
    from pipeline.journey import load_score_model
    from pipeline.report import ReportFilter, summary_lines, write_report
    from pipeline.report.versions import shown_model

    settings = settings_or_exit()
    with errors_as_exit(ValueError):
        where = ReportFilter(since=since, until=until, departments=departments)
    try:
        store = get_store(settings)
        with errors_as_exit(ValueError):
            configured = load_score_model(settings.score_model_path)
            model = shown_model(store, model_version, configured)
        data = write_report(store, Path(output), where, model=model)
    except StoreError as exc:
        if "UNKNOWN_TABLE" in str(exc) or "UNKNOWN_DATABASE" in str(exc):
            fail(
                f"database {settings.clickhouse_database!r} has no journey tables: run "
                "`journeys migrate` and the worker first, or set JOURNEYS_CLICKHOUSE_DATABASE "
                "(the demo writes to journeys_demo)"
            )
        fail(str(exc))
    for line in summary_lines(data):
        say(line)
    out.print(f"Report written to [bold]{Path(output).resolve()}[/]")
