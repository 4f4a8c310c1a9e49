"""`journeys emit FILE|-`: send a JSON Lines file of touchpoints, validating each line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from kafka.errors import KafkaError
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.cli.common import click, console, fail, kafka_unreachable, out, settings_or_exit
from pipeline.emit import EmitReport, Emitter

EXIT_REJECTED = 1  # some lines broke the contract (the valid ones were still sent)
EXIT_UNDELIVERED = 3  # Kafka unreachable, or some valid lines not acknowledged


@click.command("emit")
@click.argument("source", type=click.File("rb"), metavar="FILE|-")
@click.option("--topic", help="Topic to send to [default: JOURNEYS_TOPIC_TOUCHPOINTS].")
@click.option("--dry-run", is_flag=True, help="Validate every line; send nothing.")
@click.option("--show", default=10, show_default=True, help="Rejections listed with line numbers.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def emit(source: IO[bytes], topic: str | None, dry_run: bool, show: int, as_json: bool) -> None:
    """Validate each line of FILE (JSON Lines, one touchpoint per line; - for stdin) and
    send the valid ones to Kafka, keyed by journey_id or customer_id.

    Exits 1 when any line was rejected (the valid lines are still sent), 3 when Kafka did
    not acknowledge every valid line."""
    settings = settings_or_exit()
    try:
        emitter = Emitter.from_settings(settings, topic=topic, dry_run=dry_run)
    except ValueError as error:  # an illegal --topic
        fail(f"--topic: {error}", code=2)
    except KafkaError as error:
        fail(kafka_unreachable(settings, error), EXIT_UNDELIVERED)
    emitter.report.keep = max(show, 0)
    with emitter, _progress(source, emitter.report) as advance:
        for number, line in enumerate(source, start=1):
            if line.strip():
                emitter.emit(line.rstrip(b"\r\n"), position=number)
            advance(len(line), number)
    report = emitter.report
    destination = f"{emitter.topic} at {settings.bootstrap_servers}"
    if as_json:
        out.print_json(json.dumps(_as_dict(report, dry_run, destination)))
    else:
        _print_summary(report, dry_run, destination, show)
    if report.refused_total:
        raise SystemExit(EXIT_REJECTED)
    if report.failed or (report.sent < report.accepted and not dry_run):
        raise SystemExit(EXIT_UNDELIVERED)


@contextmanager
def _progress(source: IO[bytes], report: EmitReport) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over the bytes read, with lines and rejections so far; on a terminal
    only (pipes and CI logs stay clean)."""
    if not console.is_terminal:
        yield lambda _bytes, _line: None
        return
    columns = [
        TextColumn("emitting"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]} lines, {task.fields[rejected]} rejected"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("emit", total=_size_of(source), lines=0, rejected=0)

        def advance(size: int, line: int) -> None:
            rejected = report.refused_total
            progress.update(task, advance=size, lines=line, rejected=rejected)

        yield advance


def _size_of(source: IO[bytes]) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size or None
    except (OSError, ValueError):  # stdin from a pipe, or an in-memory stream
        return None


def _as_dict(report: EmitReport, dry_run: bool, destination: str) -> dict[str, Any]:
    return {
        "destination": destination,
        "dry_run": dry_run,
        "valid": report.accepted,
        "sent": report.sent,
        "failed": report.failed,
        "rejected": report.refused_total,
        "rejected_by_reason": dict(report.refused.most_common()),
        "first_rejections": [
            {"line": line, "code": r.code, "field": r.field, "message": r.message}
            for line, r in report.first_refusals
        ],
        "first_failures": report.first_failures,
    }


def _print_summary(report: EmitReport, dry_run: bool, destination: str, show: int) -> None:
    if dry_run:
        out.print(f"dry run: {report.accepted} valid lines, nothing sent to {destination}")
    else:
        out.print(f"sent {report.sent} of {report.accepted} valid lines to {destination}")
    if report.failed:
        out.print(f"[red]not acknowledged by Kafka: {report.failed}[/]")
        for failure in report.first_failures[:show]:
            out.print(f"  {failure}", markup=False, soft_wrap=True)
    if not report.refused_total:
        out.print("rejected: 0")
        return
    out.print(f"[red]rejected: {report.refused_total}[/]")
    for code, count in report.refused.most_common():
        out.print(f"  {code:<28} {count}")
    out.print(f"first rejections (of {report.refused_total}):")
    for line, rejection in report.first_refusals[:show]:
        out.print(
            f"  line {line}: {rejection.code}: {rejection.message}", markup=False, soft_wrap=True
        )
