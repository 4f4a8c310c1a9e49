"""`journeys diff OLD NEW`: what a model version changes, in the terminal and in the report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from pipeline.cli.common import errors_as_exit, fail, out, settings_or_exit, time_window
from pipeline.store import StoreError, get_store


@click.command("diff")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Also write the report of NEW with a section on what changes from OLD (HTML).",
)
@time_window(
    since="Only journeys under way at or after this event time",
    until="Only journeys under way before this event time",
)
def diff_command(
    old: str, new: str, output: str | None, since: datetime | None, until: datetime | None
) -> None:
    """Compare two score model versions stored in the tables (the live one and one that
    `journeys rescore` stored, e.g. `journeys diff v1 v2`): points lost per department x
    stage, the ranking of breakdowns, the journeys that change band with examples, the
    share lost beyond the front desk and the word-of-mouth balance, before and after.

    --since / --until (as `journeys rescore` takes them) narrow both versions to the
    journeys under way in that event-time window, and their signals.

    In embedded mode, stop the worker first (chdb lets one process open the data directory).
    """
    from pipeline.report import ReportFilter, write_report
    from pipeline.report.diff import Window, html_section, load_diff
    from pipeline.report.versions import shown_model

    with errors_as_exit(ValueError):
        window = Window(since, until)
    settings = settings_or_exit()
    try:
        store = get_store(settings)
        with errors_as_exit(ValueError):
            old_model, new_model = shown_model(store, old), shown_model(store, new)
        diff = load_diff(store, old_model, new_model, window)
        if output:
            write_report(store, Path(output), ReportFilter(since=since, until=until),
                         model=new_model, extra=[html_section(diff)])  # fmt: skip
    except StoreError as exc:
        fail(str(exc))
    print_diff(diff)
    if output:
        out.print(f"Report of {new} with the diff written to [bold]{Path(output).resolve()}[/]")


def print_diff(diff: object) -> None:
    from pipeline.report.diff import ModelDiff, summary_rows

    assert isinstance(diff, ModelDiff)
    old, new = diff.old.model.version, diff.new.model.version
    table = Table(title=f"Model {new} against {old}", caption=f"over {diff.window.describe()}")
    for name in ("figure", old, new, "change"):
        table.add_column(name, justify="left" if name == "figure" else "right")
    for row in summary_rows(diff):
        table.add_row(*row)
    out.print(table)
    cells = Table(title="Points lost per department x stage (largest changes first)")
    for name in ("department", "stage", old, new, "change"):
        cells.add_column(name, justify="right" if name in (old, new, "change") else "left")
    for (department, stage), a, b in diff.cells()[:15]:
        cells.add_row(department, stage, f"{a:,.0f}", f"{b:,.0f}", f"{b - a:+,.0f}")
    out.print(cells)
    ranks = Table(title="Ranking of breakdowns")
    for name in ("department x stage: signal", f"rank in {old}", f"rank in {new}"):
        ranks.add_column(name, justify="left" if name.startswith("department") else "right")
    for (department, stage, signal), before, after in diff.ranks():
        ranks.add_row(f"{department} x {stage}: {signal.replace('_', ' ')}",
                      "-" if before is None else str(before),
                      "-" if after is None else str(after))  # fmt: skip
    out.print(ranks)
    bands = Table(title=f"Journeys that change band ({diff.changed:,}; {diff.same_band:,} kept "
                        f"theirs; only in {old}: {diff.only_old:,}, only in {new}: "
                        f"{diff.only_new:,})")  # fmt: skip
    for name in ("band", "journeys", "examples (score)"):
        bands.add_column(name, justify="right" if name == "journeys" else "left")
    for change in diff.changes:
        examples = ", ".join(f"{j} ({a:.0f} → {b:.0f})" for j, a, b in change.examples)
        bands.add_row(f"{change.old} → {change.new}", f"{change.journeys:,}", examples)
    out.print(bands)
