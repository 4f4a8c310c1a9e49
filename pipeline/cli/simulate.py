"""`journeys simulate`: a realistic company's touchpoint traffic, to Kafka or JSON Lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from pipeline.cli.common import (
    TIME,
    TIME_EXAMPLE,
    console,
    errors_as_exit,
    fail,
    say,
    settings_or_exit,
)
from pipeline.simulate import (
    BREAKDOWN_PRESETS,
    DEFAULT_PRESET,
    FAILURE_KINDS,
    Pacer,
    SimulationConfig,
    SimulationConfigError,
    SimulationSummary,
    default_start,
    parse_breakdowns,
    simulate,
)
from pipeline.simulate.faults import Delivery
from pipeline.simulate.send import ensure_topic, send_to_kafka, write_lines

_BREAKDOWN_HELP = (
    "Where the company breaks down: a preset ("
    + ", ".join(BREAKDOWN_PRESETS)
    + ") or KIND=SHARE with KIND one of "
    + ", ".join(FAILURE_KINDS)
    + f". Repeatable. Default: {DEFAULT_PRESET}."
)


# SimulationConfig's field names, as the options that set them.
_OPTION_OF = {
    "late_share": "--late",
    "out_of_order_share": "--out-of-order",
    "duplicate_share": "--duplicates",
    "malformed_share": "--malformed",
    "survey_share": "--surveys",
    "baseline": "--baseline",
    "customers": "--customers",
    "days": "--days",
    "start": "--start",
    "breakdowns": "--breakdown",
    "breakdown": "--breakdown",
}


def build_config(**values: Any) -> SimulationConfig:
    """The config, with errors naming the command-line option rather than the field."""
    try:
        return SimulationConfig(**values)
    except SimulationConfigError as exc:
        field, sep, rest = str(exc).partition(":")
        name = field.split()[0]
        if sep and name in _OPTION_OF:
            raise SimulationConfigError(f"{_OPTION_OF[name]}{field[len(name) :]}:{rest}") from None
        raise


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Progress]:
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
        bar.add_task(label, total=total)
        yield bar


def print_summary(summary: SimulationSummary) -> None:
    for line in summary.lines():
        say(line)


def send(deliveries: list[Delivery], output: str | None, topic: str | None, pacer: Pacer) -> None:
    """Send to the file/stdout named by `output`, else to Kafka (configured or local broker)."""
    with progress_bar(len(deliveries), "sending") as bar:
        task = bar.task_ids[0]

        def advance(n: int) -> None:
            bar.advance(task, n)

        if output == "-":
            write_lines(deliveries, sys.stdout.buffer, pacer, advance)
        elif output is not None:
            with Path(output).open("wb") as stream:
                write_lines(deliveries, stream, pacer, advance)
        else:
            settings = settings_or_exit()
            name = topic or settings.topic_touchpoints
            options = settings.kafka_command_options()
            servers = settings.bootstrap_servers
            ensure_topic(servers, name, settings.topic_partitions, **options)
            send_to_kafka(deliveries, servers, name, pacer, advance, **options)


@click.command("simulate")
@click.option("--customers", default=2000, show_default=True, help="Customers of the company.")
@click.option("--days", default=30, show_default=True, help="Length of the simulated period.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same traffic.")
@click.option(
    "--start",
    type=TIME,
    metavar="TIME",
    help=f"Start of the period, {TIME_EXAMPLE}. Default: the period ends at the current hour.",
)
@click.option("--breakdown", "breakdowns", multiple=True, help=_BREAKDOWN_HELP)
@click.option("--baseline", default=0.04, show_default=True, help="Failure share elsewhere.")
@click.option("--surveys", default=0.2, show_default=True, help="Share of journeys surveyed.")
@click.option("--late", default=0.01, show_default=True, help="Share sent hours-days late.")
@click.option("--out-of-order", default=0.05, show_default=True, help="Share sent minutes late.")
@click.option("--duplicates", default=0.02, show_default=True, help="Share sent twice.")
@click.option("--malformed", default=0.01, show_default=True, help="Extra broken messages.")
@click.option("--rate", type=float, help="At most this many messages per second.")
@click.option("--speed", type=float, help="Simulated seconds per wall second (3600: 1 h/s).")
@click.option("--output", "-o", help="Write JSON Lines here ('-' for stdout) instead of Kafka.")
@click.option("--topic", help="Kafka topic (default: JOURNEYS_TOPIC_TOUCHPOINTS).")
@click.option("--summary-json", type=click.Path(dir_okay=False), help="Also write the summary.")
def simulate_command(
    customers: int,
    days: int,
    seed: int,
    start: datetime | None,
    breakdowns: tuple[str, ...],
    baseline: float,
    surveys: float,
    late: float,
    out_of_order: float,
    duplicates: float,
    malformed: float,
    rate: float | None,
    speed: float | None,
    output: str | None,
    topic: str | None,
    summary_json: str | None,
) -> None:
    """Simulate a company's customers and their journeys across departments; send the events.

    Breakdowns are planted where the profile says, delivery faults (late, out of order,
    duplicate, malformed) at the given shares; the summary says what was planted.
    """
    with errors_as_exit(SimulationConfigError, ValueError):
        config = build_config(
            customers=customers,
            days=days,
            seed=seed,
            start=start or default_start(days),
            breakdowns=parse_breakdowns(breakdowns or (DEFAULT_PRESET,)),
            baseline=baseline,
            survey_share=surveys,
            late_share=late,
            out_of_order_share=out_of_order,
            duplicate_share=duplicates,
            malformed_share=malformed,
        )
        pacer = Pacer(rate=rate, speed=speed)
    deliveries, summary = simulate(config)
    from kafka.errors import KafkaError

    try:
        send(deliveries, output, topic, pacer)
    except KafkaError as exc:
        fail(
            f"Kafka at {settings_or_exit().bootstrap_servers}: {exc}. Start the local broker "
            "with `journeys kafka start`, or set JOURNEYS_KAFKA_BOOTSTRAP_SERVERS; or write to "
            "a file with --output"
        )
    except (RuntimeError, OSError) as exc:
        fail(str(exc))
    print_summary(summary)
    if summary_json:
        Path(summary_json).write_bytes(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2))
