"""`journeys config`: every setting, its environment variable, value and meaning."""

from __future__ import annotations

import click
from pydantic import SecretStr
from rich.table import Table

from pipeline.cli.common import out, settings_or_exit
from pipeline.settings import ENV_PREFIX, Settings


def describe_settings(settings: Settings, effective: bool = True) -> list[tuple[str, str, str]]:
    """(variable, value, meaning) per setting; secrets are masked. `effective` shows the
    broker commands will use (the running local broker's when none is configured)."""
    rows = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if effective and name == "kafka_bootstrap_servers" and settings.bootstrap_servers != value:
            value = f"{settings.bootstrap_servers} (the local broker)"
        if isinstance(value, SecretStr):
            shown = "********" if value.get_secret_value() else "(empty)"
        else:
            shown = "(unset)" if value is None else str(value)
        rows.append((ENV_PREFIX + name.upper(), shown, field.description or ""))
    return rows


def settings_markdown() -> str:
    """The README's configuration table: every variable with its default and meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    defaults = Settings.model_construct()
    for variable, default, meaning in describe_settings(defaults, effective=False):
        lines.append(f"| `{variable}` | `{default}` | {meaning} |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--markdown", is_flag=True, help="Print the defaults as the README's table.")
def config(markdown: bool) -> None:
    """Show the effective configuration (from JOURNEYS_* variables and defaults).

    A table on a terminal; otherwise one line per variable: name, value and meaning,
    separated by tabs."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    rows = describe_settings(settings_or_exit())
    if not out.is_terminal:
        # Piped or redirected: a table would cut names to the assumed 80 columns, and
        # `journeys config | grep BOOTSTRAP` must find the variable.
        for row in rows:
            click.echo("\t".join(row))
        return
    table = Table("variable", "value", "meaning", show_lines=False)
    for row in rows:
        table.add_row(*row)
    out.print(table)
