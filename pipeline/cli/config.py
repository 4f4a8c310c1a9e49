"""`journeys config`: every setting, its environment variable, value and meaning."""

from __future__ import annotations

import click
from pydantic import SecretStr
from rich.table import Table

from pipeline.cli.common import out, settings_or_exit
from pipeline.settings import ENV_PREFIX, Settings


def describe_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(variable, effective value, meaning) per setting; secrets are masked."""
    rows = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = "********" if value.get_secret_value() else "(empty)"
        else:
            shown = "(unset)" if value is None else str(value)
        rows.append((ENV_PREFIX + name.upper(), shown, field.description or ""))
    return rows


def settings_markdown() -> str:
    """The README's configuration table: every variable with its default and meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for variable, default, meaning in describe_settings(Settings.model_construct()):
        lines.append(f"| `{variable}` | `{default}` | {meaning} |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--markdown", is_flag=True, help="Print the defaults as the README's table.")
def config(markdown: bool) -> None:
    """Show the effective configuration (from JOURNEYS_* variables and defaults)."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    table = Table("variable", "value", "meaning", show_lines=False)
    for row in describe_settings(settings_or_exit()):
        table.add_row(*row)
    out.print(table)
