"""`--help` a new user can read at 80 columns: whole summaries, every option explained,
readable placeholders, and values checked before anything starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import cli


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


def help_text(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("group", [(), ("kafka",), ("dashboards",)])
def test_command_lists_show_each_summary_whole(group: tuple[str, ...]) -> None:
    shown = " ".join(help_text(*group).partition("Commands:")[2].split())
    assert "..." not in shown
    listed = command_at(group)
    assert isinstance(listed, click.Group)
    for name in listed.list_commands(click.Context(listed)):
        summary = command_at((*group, name)).get_short_help_str(limit=10_000)
        assert summary.endswith(".") and f"{name} {summary}" in shown


@pytest.mark.parametrize("path", list(commands()), ids=" ".join)
def test_every_option_says_what_it_does(path: tuple[str, ...]) -> None:
    for param in command_at(path).params:
        if isinstance(param, click.Option):
            assert param.help, f"journeys {' '.join(path)} {param.opts[0]} has no help"


@pytest.mark.parametrize("path", [("report",), ("simulate",)])
def test_time_options_show_a_readable_placeholder(path: tuple[str, ...]) -> None:
    shown = help_text(*path)
    assert "%" not in shown
    assert "TIME" in shown and "2026-03-01T00:00:00+00:00" in " ".join(shown.split())


def test_an_unknown_log_level_is_refused_before_the_worker_starts() -> None:
    result = CliRunner().invoke(cli, ["run", "--loglevel", "loud"])
    assert result.exit_code == 2
    assert "'loud' is not one of" in result.output and "debug" in result.output


MODEL = str(Path(__file__).parents[2] / "pipeline" / "journey" / "score_model_v1.toml")
WINDOWED = [("diff", "v1", "v2"), ("rescore", "--model", MODEL), ("calibrate",), ("report",)]


@pytest.mark.parametrize("command", WINDOWED, ids=lambda c: c[0])
def test_a_window_that_ends_before_it_starts_is_refused_alike(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    """Every windowed command refuses --since at or after --until with the same words and
    exit 1, before it opens a store (the data directory stays empty)."""
    window = ["--since", "2026-03-02T00:00:00+00:00", "--until", "2026-03-01T00:00:00+00:00"]
    result = CliRunner().invoke(
        cli, [*command, *window], env={"JOURNEYS_DATA_DIR": str(tmp_path / "data")}
    )
    assert result.exit_code == 1, result.output
    assert "--since (2026-03-02 00:00:00+00:00) must be before --until" in result.output
    assert not (tmp_path / "data").exists()
