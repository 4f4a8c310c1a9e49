"""What every command shares: settings loading with readable errors, console output."""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from pipeline.settings import Settings, SettingsError, load_settings

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)
# Piped into a log or CI: rich would wrap at an assumed 80 columns, splitting a line (and a
# path or an address in it) where a reader or grep expects it whole.
for _stream in (console, out):
    _stream.soft_wrap = not _stream.is_terminal


def fail(message: str, code: int = 1) -> NoReturn:
    # escape: a message quoting `pip install 'pkg[extra]'` or a list would lose its brackets.
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise SystemExit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), code=2)


def say(message: str) -> None:
    console.print(f"[dim]·[/] {message}")


@contextmanager
def errors_as_exit(*kinds: type[Exception]) -> Iterator[None]:
    """Turn expected errors into a one-line message and exit 1 instead of a traceback."""
    try:
        yield
    except kinds as exc:
        fail(str(exc))


@contextmanager
def stop_signals(stop: Callable[[], object]) -> Iterator[None]:
    """Inside, in the running event loop: SIGTERM (a supervisor's stop) and SIGINT (Ctrl-C)
    call `stop` instead of ending the process, so the service can end cleanly."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def kafka_unreachable(settings: Settings, error: Exception) -> str:
    """Why a command could not reach Kafka, and what to check."""
    waited = f"{settings.kafka_connect_timeout_seconds:g} s"
    return (
        f"cannot reach Kafka at {settings.bootstrap_servers} within {waited} "
        f"(JOURNEYS_KAFKA_CONNECT_TIMEOUT_SECONDS): {error}; {kafka_hint(settings)}"
    )


def kafka_hint(settings: Settings) -> str:
    """What to check when Kafka does not answer: the address set, or the local broker."""
    if "kafka_bootstrap_servers" in settings.model_fields_set:
        return "check JOURNEYS_KAFKA_BOOTSTRAP_SERVERS"
    return (
        "start the local broker with `journeys kafka start`, or set "
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS"
    )


class Group(click.Group):
    """A command group whose listing shows each command's first sentence in full, wrapped:
    click cuts it to fit one line ("..."), which at 80 columns left no summary readable."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# Event-time options: shown as TIME in --help (click would list the raw strftime codes).
TIME_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M:%S%z"]
TIME = click.DateTime(TIME_FORMATS)
TIME_EXAMPLE = "with offset, e.g. 2026-03-01T00:00:00+00:00"
Command = TypeVar("Command", bound=Callable[..., Any])


def time_window(since: str, until: str) -> Callable[[Command], Command]:
    """The options --since and --until (TIME, both optional) of the commands that take an
    event-time window: `since` and `until` begin their help, TIME_EXAMPLE ends it. A window
    that ends before it starts is refused here, for every such command alike (exit 1, before
    anything is opened); their plans and filters keep the check for other callers."""

    def add(command: Command) -> Command:
        @functools.wraps(command)
        def checked(*args: Any, **kwargs: Any) -> Any:
            from pipeline.report.data import check_window  # not at every command's import

            with errors_as_exit(ValueError):
                check_window(kwargs.get("since"), kwargs.get("until"), "--")
            return command(*args, **kwargs)

        options: Any = checked
        for name, text in (("--until", until), ("--since", since)):  # the last added shows first
            option = click.option(name, type=TIME, metavar="TIME", help=f"{text}, {TIME_EXAMPLE}.")
            options = option(options)
        return options

    return add


Say = Callable[[str], None]
__all__ = [
    "TIME",
    "TIME_EXAMPLE",
    "Group",
    "Say",
    "click",
    "console",
    "errors_as_exit",
    "fail",
    "kafka_hint",
    "kafka_unreachable",
    "out",
    "say",
    "settings_or_exit",
    "stop_signals",
    "time_window",
]
