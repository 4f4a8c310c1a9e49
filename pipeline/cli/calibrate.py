"""`journeys calibrate`: fit the signals' impacts to survey answers, propose a model file."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from pipeline.calibrate import Calibration, FitSettings, SurveyedJourney
from pipeline.cli.common import fail, out, say, settings_or_exit, time_window
from pipeline.journey import ScoreModel
from pipeline.settings import Settings
from pipeline.store import StoreError, get_store


@click.command("calibrate")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the proposed model (replaced if it exists); default "
    "score_model_<new version>.toml in the current directory.",
)
@click.option(
    "--version",
    "new_version",
    metavar="VERSION",
    help="Version of the proposed model; default the live one with -calYYYYMMDDHHMM (UTC).",
)
@time_window(
    since="Journeys whose last event is at or after",
    until="Journeys whose last event is before",
)
@click.option(
    "--ridge",
    type=click.FloatRange(min=0),
    metavar="WEIGHT",
    default=5.0,
    show_default=True,
    help="Pull of the current impacts: like this many journeys agreeing with them (0: none).",
)
@click.option(
    "--min-journeys",
    type=click.IntRange(min=2),
    metavar="N",
    default=30,
    show_default=True,
    help="Refuse with fewer surveyed journeys than this.",
)
@click.option(
    "--min-per-signal",
    type=click.IntRange(min=1),
    metavar="N",
    default=10,
    show_default=True,
    help="Fit a signal only when this many surveyed journeys have it; others keep their impact.",
)
def calibrate(
    out_path: Path | None,
    new_version: str | None,
    since: datetime | None,
    until: datetime | None,
    ridge: float,
    min_journeys: int,
    min_per_signal: int,
) -> None:
    """Fit the signals' impacts to survey answers and write a proposed model.

    A ridge regression of the journeys' 0-100 survey scores on their signal counts, shrunk
    towards the live model's impacts (method: docs/score-model.md). Prints each signal's
    current and fitted impact with a 95% interval, R² and the number of journeys, and writes
    the live model file with the fitted impacts and a new version, for `journeys rescore
    --model` and `journeys diff`. Refuses (exit 1) with too few survey answers.

    In embedded mode the store belongs to the worker while it runs: stop it first.
    """
    from pipeline.calibrate import CalibrationError
    from pipeline.journey import DEFAULT_MODEL_PATH, ScoreModelError

    settings = settings_or_exit()
    model_path = settings.score_model_path or DEFAULT_MODEL_PATH
    fit = FitSettings(ridge, min_journeys, min_per_signal)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        proposal = _propose(settings, model_path, fit, new_version, since, until)
    except (CalibrationError, ScoreModelError) as exc:
        fail(str(exc))
    except StoreError as exc:
        fail(_store_problem(settings, exc))
    except KeyboardInterrupt:
        say("interrupted: no model written")
        raise SystemExit(0) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    calibration = proposal.calibration
    out.print(_table(calibration, proposal.current_version, proposal.values))
    say(
        f"{calibration.journeys:,} surveyed journeys of model {proposal.current_version}; R² "
        f"{calibration.r_squared_current:.3f} with the current impacts, "
        f"{calibration.r_squared:.3f} fitted; no-signal survey level "
        f"{calibration.intercept:.1f}"
    )
    target = out_path or Path(f"score_model_{proposal.version}.toml")
    _write(target, proposal.text)
    out.print(f"Proposed model {proposal.version} written to [bold]{target.resolve()}[/]")


@dataclass(frozen=True)
class Proposal:
    current_version: str
    calibration: Calibration
    values: dict[str, float]
    version: str
    text: str


def _propose(
    settings: Settings,
    model_path: Path,
    fit: FitSettings,
    new_version: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Proposal:
    from pipeline.calibrate import (
        current_impacts,
        fit_impacts,
        proposed_impacts,
        proposed_version,
        write_model_text,
    )
    from pipeline.journey import load_score_model

    model = load_score_model(model_path)
    journeys = _read_answers(settings, model, since, until)
    calibration = fit_impacts(journeys, current_impacts(model), fit)
    now = datetime.now(UTC)
    version = new_version or proposed_version(model.version, now)
    note = (
        f"Proposed by `journeys calibrate` at {now:%Y-%m-%d %H:%M} UTC from model "
        f"{model.version}: {calibration.journeys} surveyed journeys, R² "
        f"{calibration.r_squared_current:.2f} with the current impacts, "
        f"{calibration.r_squared:.2f} fitted.\nReview it, then `journeys rescore --model "
        "FILE` and `journeys diff` (docs/score-model.md#changing-the-model)."
    )
    values = proposed_impacts(calibration, model)
    text = write_model_text(model_path.read_text(encoding="utf-8"), version, values, note)
    return Proposal(model.version, calibration, values, version, text)


def _write(target: Path, text: str) -> None:
    """Replace `target` whole or not at all: an interrupted run leaves no half a model."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        fail(f"--out {target}: cannot write the proposed model ({exc})")


def _interrupt(_signum: int, _frame: object) -> None:
    # SIGTERM stops the command as Ctrl-C does: the store is closed, nothing is written.
    raise KeyboardInterrupt


def _read_answers(
    settings: Settings, model: ScoreModel, since: datetime | None, until: datetime | None
) -> list[SurveyedJourney]:
    from pipeline.calibrate import surveyed_journeys

    store = get_store(settings)
    try:
        return surveyed_journeys(store, model, since, until)
    finally:
        store.close()


def _store_problem(settings: Settings, exc: StoreError) -> str:
    if "UNKNOWN_TABLE" in str(exc) or "UNKNOWN_DATABASE" in str(exc):
        return (
            f"database {settings.clickhouse_database!r} has no journey tables: run `journeys "
            "migrate` and the worker first, or set JOURNEYS_CLICKHOUSE_DATABASE (the demo "
            "writes to journeys_demo)"
        )
    return str(exc)


def _table(calibration: Calibration, version: str, values: dict[str, float]) -> Table:
    table = Table(
        "signal", f"impact {version}", "fitted", "95% interval", "journeys", "note",
        title="Signal impacts fitted to survey answers (points of the 0-100 score)",
    )  # fmt: skip
    for impact in calibration.impacts:
        fitted, interval, note = (
            "—",
            "—",
            f"kept: in fewer than {calibration.settings.min_per_signal}",
        )
        if impact.fitted is not None and impact.low is not None and impact.high is not None:
            fitted = f"{impact.fitted:+.1f}"
            interval = f"{impact.low:+.1f} .. {impact.high:+.1f}"
            key = (
                "long_wait.impact_per_threshold"
                if impact.signal == "long_wait"
                else f"impacts.{impact.signal}"
            )
            note = (
                "written as 0: the model's sign"
                if values[key] == 0 != round(impact.fitted, 1)
                else ""
            )
        if impact.signal == "long_wait":
            note = ("per threshold exceeded; " + note).rstrip("; ")
        table.add_row(
            impact.signal, f"{impact.current:+g}", fitted, interval, f"{impact.journeys:,}", note
        )
    return table
