"""`journeys rescore`: score the stored touchpoints again with another model version."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import (
    console,
    errors_as_exit,
    fail,
    out,
    say,
    settings_or_exit,
    time_window,
)
from pipeline.settings import Settings
from pipeline.store import Store, StoreError, get_store

EMBEDDED_BUSY = (
    "the embedded store in {path} is open in another process, most likely the worker "
    "(`journeys run` or `journeys demo`): chdb lets one process open a data directory. Stop "
    "the worker, run the rescore, then start the worker again; or run ClickHouse as a server "
    "(JOURNEYS_CLICKHOUSE_MODE=server), where the rescore runs beside the live worker"
)


@click.command("rescore")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE.toml",
    help="The score model to score with (its `version` names the stored rows).",
)
@time_window(
    since="Only journeys with a touchpoint at or after this event time",
    until="Only journeys with a touchpoint before this event time",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Processes that score in parallel (one per core).",
)
@click.option(
    "--shards",
    type=click.IntRange(1, 4096),
    help="Parts the journeys are split into (a resumed run redoes at most the parts in "
    "flight); default: one per 100,000 touchpoints, at least 8.",
)
def rescore_command(
    model_path: Path,
    since: datetime | None,
    until: datetime | None,
    workers: int,
    shards: int | None,
) -> None:
    """Score the stored touchpoints again with another score model and store the journeys,
    signals and scores under its version, beside the live ones (see `journeys diff`).

    Reads the touchpoints table, not Kafka. Every journey with a touchpoint in the window
    is scored whole, from all its touchpoints, by the live worker's engine, as of the
    moment the run started. Interrupted (Ctrl-C, SIGTERM, a crash), the same command
    resumes where it stopped and writes no row twice.

    In embedded mode, stop the worker first (chdb lets one process open the data
    directory); with a ClickHouse server it runs beside the live worker.
    """
    from pipeline.rescore import RescoreError, RescorePlan, rescore

    settings = settings_or_exit()
    with errors_as_exit(ValueError, OSError):
        plan = RescorePlan(
            model_path.read_text(encoding="utf-8"),
            since=since,
            until=until,
            workers=workers,
            shards=shards,
        )
    say(f"model {plan.model.version} from {model_path}; window {plan.window}")
    salt = settings.erasure_salt.get_secret_value() if settings.erasure_salt else None
    with _store(settings) as store, _stop_requested() as stopping:
        try:
            with _progress() as update:
                outcome = rescore(store, plan, on_progress=update, stop=stopping,
                                  erasure_salt=salt)  # fmt: skip
        except RescoreError as exc:
            fail(str(exc))
        except StoreError as exc:
            fail(_store_problem(settings, exc))
    if outcome.resumed_shards:
        say(f"resumed a run as of {outcome.as_of:%Y-%m-%d %H:%M:%S} UTC: "
            f"{outcome.resumed_shards} of {outcome.shards} shards were done")  # fmt: skip
    rate = f"{outcome.events_per_second:,.0f} events/s" if outcome.events else "nothing to do"
    summary = (
        f"{outcome.events:,} touchpoints, {outcome.journeys:,} journeys, "
        f"{outcome.signals:,} signal rows in {outcome.seconds:.1f} s ({rate})"
    )
    if outcome.stopped:
        out.print(f"Stopped: {summary}; run the same command again to finish it")
        return
    out.print(
        f"Rescored with model [bold]{outcome.model_version}[/] as of "
        f"{outcome.as_of:%Y-%m-%d %H:%M:%S} UTC: {summary}. Compare it with "
        f"`journeys diff LIVE {outcome.model_version}`"
    )


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    try:
        store = get_store(settings)
    except StoreError as exc:
        fail(_store_problem(settings, exc))
    except RuntimeError as exc:  # chdb's own, when another process holds the directory
        if "Cannot lock file" in str(exc) or "another server instance" in str(exc).lower():
            fail(EMBEDDED_BUSY.format(path=settings.clickhouse_dir))
        raise
    try:
        yield store
    finally:
        store.close()


def _store_problem(settings: Settings, exc: StoreError) -> str:
    if "UNKNOWN_TABLE" in str(exc) or "UNKNOWN_DATABASE" in str(exc):
        return (
            f"database {settings.clickhouse_database!r} has no journey tables at migration 0007: "
            "run `journeys migrate` (or start the worker once) first"
        )
    return str(exc)


@contextmanager
def _stop_requested() -> Iterator[Any]:
    """SIGTERM and Ctrl-C ask the rescore to stop after the shard it is storing."""
    asked: list[int] = []

    def ask(signum: int, _frame: Any) -> None:
        if not asked:
            console.print("[dim]·[/] stopping after the shard being stored ...")
        asked.append(signum)

    previous = {s: signal.signal(s, ask) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: bool(asked)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _progress() -> Iterator[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("touchpoints", total=None)

        def update(progress: Any) -> None:
            bar.update(task, total=progress.events, completed=progress.events_done)

        yield update
