"""`journeys migrate`: bring the ClickHouse schema up to date (both backends, or a cluster)."""

from __future__ import annotations

import click

from pipeline.cli.common import errors_as_exit, fail, out, say, settings_or_exit
from pipeline.store import StoreError, apply_migrations, get_store, load_migrations


def _cluster_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from pipeline.store.cluster import cluster_name_problem

    problem = None if value is None else cluster_name_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


@click.command()
@click.option(
    "--cluster",
    metavar="NAME",
    callback=_cluster_name,
    help="Lay the schema out for the ClickHouse cluster NAME of the servers' remote_servers: "
    "ON CLUSTER DDL, Replicated*MergeTree local tables, Distributed tables under the public "
    "names (docs/production.md). Needs server mode; the same migrations, recorded alike.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print every migration's DDL (with --cluster, as the cluster runs it) instead of "
    "applying it; connects to nothing.",
)
def migrate(cluster: str | None, dry_run: bool) -> None:
    """Apply the numbered SQL migrations that are not applied yet (safe to run again)."""
    from pipeline.store.cluster import ClusterLayout, check_cluster, script
    from pipeline.store.migrations import SINGLE_NODE, Layout

    settings = settings_or_exit()
    database = settings.clickhouse_database
    with errors_as_exit(StoreError):
        migrations = load_migrations()
        layout: Layout = ClusterLayout(cluster, database, migrations) if cluster else SINGLE_NODE
    if dry_run:
        title = (
            f"-- `journeys migrate --cluster {cluster}`: database {database} on a sharded, "
            "replicated cluster.\n-- Local tables are *_local (Replicated*MergeTree); the "
            "public names are Distributed tables over them.\n-- migrate records each migration "
            "in schema_migrations, which every node replicates."
            if cluster
            else f"-- `journeys migrate`: database {database} on one server (or chdb)."
        )
        click.echo(script(layout, migrations, title), nl=False)
        return
    if cluster and settings.clickhouse_mode != "server":
        fail(
            "--cluster lays the schema out on a ClickHouse cluster: set "
            "JOURNEYS_CLICKHOUSE_MODE=server and JOURNEYS_CLICKHOUSE_URL to one of its nodes "
            "(or print the DDL with --dry-run)",
            code=2,
        )
    with errors_as_exit(StoreError):
        store = get_store(settings)
        if cluster:
            for note in check_cluster(store, cluster):
                say(note)
        applied = apply_migrations(store, migrations, say=say, layout=layout)
        from pipeline.store.retention import apply_retention

        apply_retention(
            store, settings.retention_days_events, settings.retention_days_journeys, say
        )
    where = (
        f"chdb at {settings.clickhouse_dir}"
        if settings.clickhouse_mode == "embedded"
        else settings.clickhouse_url
    )
    if cluster:
        where += f", cluster {cluster}"
    if applied:
        out.print(f"applied {len(applied)} migration(s) to {database} ({where})")
    else:
        out.print(f"schema of {database} is up to date ({where})")
