"""What every command shares: settings loading with readable errors, console output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from rich.console import Console

from pipeline.settings import Settings, SettingsError, load_settings

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
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


Say = Callable[[str], None]
__all__ = ["Say", "click", "console", "errors_as_exit", "fail", "out", "say", "settings_or_exit"]
