"""`journeys migrate`: bring the ClickHouse schema up to date (both backends)."""

from __future__ import annotations

import click

from pipeline.cli.common import errors_as_exit, out, say, settings_or_exit
from pipeline.store import StoreError, apply_migrations, get_store


@click.command()
def migrate() -> None:
    """Apply the numbered SQL migrations that are not applied yet (safe to run again)."""
    settings = settings_or_exit()
    with errors_as_exit(StoreError):
        store = get_store(settings)
        applied = apply_migrations(store, say=say)
    where = (
        f"chdb at {settings.clickhouse_dir}"
        if settings.clickhouse_mode == "embedded"
        else settings.clickhouse_url
    )
    if applied:
        out.print(
            f"applied {len(applied)} migration(s) to {settings.clickhouse_database} ({where})"
        )
    else:
        out.print(f"schema of {settings.clickhouse_database} is up to date ({where})")
