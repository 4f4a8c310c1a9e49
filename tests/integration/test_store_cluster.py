"""The cluster layout (`journeys migrate --cluster`) on the real engine, chdb.

chdb runs neither Keeper nor the distributed DDL queue, so it cannot run the cluster's DDL as
a cluster does. It checks what it can:

* every statement `journeys migrate --cluster` runs parses (EXPLAIN AST);
* two shards emulated in one chdb. Each shard is a database holding the local tables and the
  views exactly as rendered, but for the two things only a cluster has: `ON CLUSTER` is
  dropped, and `Replicated<engine>(path, replica, args...)` becomes `<engine>(args...)`.
  The public names live in a third database, made from the rendered Distributed tables
  (their columns as rendered) with a Merge engine over both shards' local tables: it reads
  every shard, applies FINAL shard by shard and aggregates on top, as a Distributed table
  does (with distributed_product_mode 'global', which its IN subqueries need). The plain
  views (alert_outcomes), rendered to read the Distributed tables, live there too, over
  those Merge tables. Rows reach a shard by the rendered sharding key, as the Distributed
  table sends them.

Against the embedded schema fed the same rows: the same columns in every public table, the
same engines and sorting keys in the local tables, one customer's rows on one shard, and the
same figures in every panel, alert and the report.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.report.data import ReportFilter
from pipeline.report.queries import load_report
from pipeline.store import Store, apply_migrations, load_migrations
from pipeline.store.cluster import ClusterLayout
from pipeline.store.embedded import EmbeddedStore, open_embedded
from pipeline.store.refresh import refresh_now
from tests.support.dashboards.engine_rows import SimulatedMonth, simulate_month
from tests.support.dashboards.macros import expand
from tests.support.dashboards.queries import committed_queries
from tests.support.dashboards.sample import Sample

CLUSTER = "journeys_test"
MIGRATIONS = load_migrations()
REPLICATED = re.compile(
    r"Replicated(\w*MergeTree)\('/clickhouse/tables/\{shard\}/\{database\}/\{table\}', "
    r"'\{replica\}'(?:, )?"
)
DISTRIBUTED = re.compile(
    rf"ENGINE = Distributed\('{CLUSTER}', '(?P<database>\w+)', '(?P<local>\w+)', "
    r"(?P<key>.+)\)$",
    re.DOTALL,
)
STATEMENT = re.compile(
    r"^(CREATE TABLE|CREATE MATERIALIZED VIEW|CREATE VIEW|CREATE DATABASE|DROP TABLE|"
    r"DROP VIEW|ALTER TABLE|INSERT INTO|SYSTEM WAIT VIEW)\s+(?:IF (?:NOT )?EXISTS\s+)?`?(\w+)"
)


def statements(layout: ClusterLayout) -> list[str]:
    return [*layout.setup(), *(sql for m in MIGRATIONS for sql in layout.statements(m))]


ROOTS = {"CREATE": "CreateQuery", "DROP": "DropQuery", "ALTER": "AlterQuery",
         "INSERT": "InsertQuery", "SYSTEM": "SYSTEM query"}  # fmt: skip


def test_every_cluster_statement_parses(store: Store) -> None:
    layout = ClusterLayout(CLUSTER, store.database, MIGRATIONS)
    for sql in statements(layout):
        tree = store.query(f"EXPLAIN AST {sql}")  # a syntax error raises
        assert tree[0]["explain"].startswith(ROOTS[sql.split()[0]]), sql


@dataclasses.dataclass
class Cluster:
    layout: ClusterLayout
    front: EmbeddedStore  # the public names
    shards: list[EmbeddedStore]


def without_the_cluster(sql: str) -> str:
    """What one node runs, less what needs a cluster: ON CLUSTER and the replica path."""
    return REPLICATED.sub(r"\1(", sql.replace(f" ON CLUSTER `{CLUSTER}`", ""))


def merge_over_shards(sql: str, cluster: Cluster) -> str:
    """A rendered Distributed table as a Merge table over the emulated shards."""
    found = DISTRIBUTED.search(sql)
    if found is None:
        return sql
    assert found["database"] == cluster.layout.database
    shards = "|".join(re.escape(shard.database) for shard in cluster.shards)
    merge = f"ENGINE = Merge(REGEXP('^({shards})$'), '^{found['local']}$')"
    return sql[: found.start()] + merge


def run_on_emulated_cluster(sql: str, cluster: Cluster) -> None:
    found = STATEMENT.match(sql)
    assert found, f"a statement the emulation does not place: {sql[:80]}"
    verb, name = found.groups()
    if verb == "CREATE DATABASE" or name == "schema_migrations":
        return
    if verb == "INSERT INTO":
        return  # backfills: the databases are empty while they migrate
    public = not name.endswith("_local") and name not in cluster.layout.views
    reads_distributed = "ENGINE = Distributed(" in sql or name in cluster.layout.plain_views
    if reads_distributed or (public and verb in ("ALTER TABLE", "DROP TABLE")):
        cluster.front.execute(merge_over_shards(without_the_cluster(sql), cluster))
        return
    for shard in cluster.shards:
        shard.execute(without_the_cluster(sql))


def route_through_sharding_keys(cluster: Cluster, tables: list[str]) -> None:
    """`<table>_in` in the front database sends each row to the shard its key names, as
    the Distributed table does (key % 2 picks the shard); views carry it on from there."""
    for table in tables:
        key = cluster.layout.tables[table].sharding_key
        cluster.front.execute(f"CREATE TABLE {table}_in AS {table} ENGINE = Null")
        for number, shard in enumerate(cluster.shards):
            cluster.front.execute(
                f"CREATE MATERIALIZED VIEW {table}_to_{number} "
                f"TO `{shard.database}`.{table}_local AS "
                f"SELECT * FROM {table}_in WHERE {key} % {len(cluster.shards)} = {number}"
            )


WRITTEN = [*Sample().tables(), "score_models"]


@pytest.fixture(scope="module")
def month() -> SimulatedMonth:
    """A month of 800 customers: the report's example journeys of a breakdown are the three
    smallest journey ids (pipeline/report/queries.py), whatever order the shards are read in;
    they were the first three `groupUniqArray(100)` met, which matched the embedded store
    on 500 customers and not on 800."""
    return simulate_month(customers=800)


# What a worker starting with the v1 model records (the model variable's first option and
# the alert rules' version, migration 0007).
LIVE_MODEL = {"model_version": "v1", "role": "live", "model_sha256": "", "model_toml": "",
              "registered_at": datetime.now(UTC)}  # fmt: skip


def load(store: Store, sample: Sample, suffix: str = "") -> None:
    """The sample in the worker's batches (a flush writes each table in one insert)."""
    for table, rows in sample.tables().items():
        for start in range(0, len(rows), 400):
            store.insert(table + suffix, rows[start : start + 400])
    store.insert("score_models" + suffix, [LIVE_MODEL])


@pytest.fixture(scope="module")
def embedded(chdb_dir: Path, month: SimulatedMonth) -> Iterator[EmbeddedStore]:
    store = open_embedded(chdb_dir, f"cluster_embedded_{uuid.uuid4().hex[:8]}")
    apply_migrations(store)
    load(store, month.sample)
    refresh_now(store)
    yield store
    store.drop_database()


@pytest.fixture(scope="module")
def cluster(chdb_dir: Path, month: SimulatedMonth) -> Iterator[Cluster]:
    prefix = f"cluster_{uuid.uuid4().hex[:8]}"
    front = open_embedded(chdb_dir, prefix)
    shards = [open_embedded(chdb_dir, f"{prefix}_s{n}") for n in (1, 2)]
    emulated = Cluster(ClusterLayout(CLUSTER, front.database, MIGRATIONS), front, shards)
    for sql in statements(emulated.layout):
        run_on_emulated_cluster(sql, emulated)
    route_through_sharding_keys(emulated, WRITTEN)
    load(front, month.sample, suffix="_in")
    for shard in shards:
        refresh_now(shard)
    yield emulated
    for store in (front, *shards):
        store.drop_database()


def columns(store: Store) -> dict[str, list[tuple[str, ...]]]:
    rows = store.query(
        "SELECT table, name, type, default_kind, default_expression FROM system.columns "
        "WHERE database = currentDatabase() AND table IN (SELECT name FROM system.tables "
        "WHERE database = currentDatabase() AND engine NOT LIKE '%View') "
        "ORDER BY table, position"
    )
    tables: dict[str, list[tuple[str, ...]]] = {}
    for row in rows:
        tables.setdefault(row["table"], []).append(
            (row["name"], row["type"], row["default_kind"], row["default_expression"])
        )
    return tables


def test_the_public_tables_show_the_embedded_columns(
    embedded: EmbeddedStore, cluster: Cluster
) -> None:
    expected = {t: c for t, c in columns(embedded).items() if t != "schema_migrations"}
    public = columns(cluster.front)
    assert set(cluster.layout.tables) == set(expected)
    for table, wanted in expected.items():
        assert public[table] == wanted, table
        for shard in cluster.shards:
            assert columns(shard)[table + "_local"] == wanted, table


def engines(store: Store) -> dict[str, dict[str, str]]:
    rows = store.query(
        "SELECT name, engine_full, sorting_key, partition_key, primary_key FROM system.tables "
        "WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
    )
    return {row.pop("name").removesuffix("_local"): row for row in rows}


def test_the_local_tables_keep_the_engines_and_sorting_keys(
    embedded: EmbeddedStore, cluster: Cluster
) -> None:
    """Engine arguments (version, is_deleted), sorting, partition and primary keys, TTL:
    as in the embedded schema; the de-duplication window is the replicated one."""
    expected = {t: e for t, e in engines(embedded).items() if t != "schema_migrations"}
    for table in expected.values():
        table["engine_full"] = table["engine_full"].replace(
            "non_replicated_deduplication_window", "replicated_deduplication_window"
        )
    for shard in cluster.shards:
        assert engines(shard) == expected
    replicated = {t.name for t in cluster.layout.tables.values() if t.replicated}
    refreshed = {"journey_day_stats", "open_promises", "resolution_times", "signal_day_cells",
                 "journey_cell_days", "journeys_active_blocks"}  # fmt: skip
    assert replicated == set(expected) - refreshed


def test_a_customer_lives_on_one_shard(cluster: Cluster) -> None:
    """What ReplacingMergeTree and the views fold together meets on one shard; both shards
    hold rows (the key spreads the customers)."""
    for table in ("touchpoints", "journeys", "journey_signals", "signals_by_department",
                  "promises", "resolutions", "recent_journey_snapshots"):  # fmt: skip
        sql = f"SELECT DISTINCT customer_id FROM {table}_local"
        held = [{row["customer_id"] for row in shard.query(sql)} for shard in cluster.shards]
        assert all(held), f"{table}: a shard holds no rows"
        assert not held[0] & held[1], f"{table}: customers on both shards"


def settled(value: Any) -> Any:
    """A result with floats to nine significant digits: shards add in another order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return settled(dataclasses.asdict(value))
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: settled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [settled(v) for v in value]
    return value


QUERIES = committed_queries()


# Empty unless a journey turned poor in the last hour (tests/integration/
# test_dashboards_queries.py checks it on data where one did).
QUIET_HOUR = {"Journeys that turned poor in the last hour"}


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_every_panel_shows_the_embedded_figures(
    embedded: EmbeddedStore, cluster: Cluster, month: SimulatedMonth, query: Any
) -> None:
    sql = expand(query.sql, month.context)
    expected = embedded.query(sql)
    assert expected or query.title in QUIET_HOUR, "nothing to compare"
    assert settled(cluster.front.query(sql)) == settled(expected)


def test_the_report_shows_the_embedded_figures(
    embedded: EmbeddedStore, cluster: Cluster, month: SimulatedMonth
) -> None:
    now = month.now
    for where in (ReportFilter(), ReportFilter(now - timedelta(days=7), now, ("maintenance",))):
        expected = load_report(embedded, where, now=now)
        assert expected.journeys > 0
        assert settled(load_report(cluster.front, where, now=now)) == settled(expected)
