"""`journeys migrate --cluster`: the rendered DDL's shape, its rules for statements that no
migration has yet, the command and the ledger's guard.

tests/integration/test_store_cluster.py runs the same DDL on the real engine (parse, and
two shards emulated in chdb against the embedded schema).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.store import StoreError, apply_migrations, load_migrations
from pipeline.store.base import split_statements
from pipeline.store.cluster import ClusterLayout, ClusterLayoutError, script
from pipeline.store.migrations import Migration

MIGRATIONS = load_migrations()
ON = "ON CLUSTER `prod`"
LAYOUT = ClusterLayout("prod", "journeys", MIGRATIONS)
RENDERED = [sql for m in MIGRATIONS for sql in LAYOUT.statements(m)]
SOURCE = [sql for m in MIGRATIONS for sql in m.statements]
CREATED = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) \(", re.MULTILINE)
PUBLIC = {name for sql in SOURCE for name in CREATED.findall(sql)} - {"journeys_by_start"}
REFRESHED = {"journey_day_stats", "open_promises", "resolution_times", "signal_day_cells",
             "journey_cell_days", "journeys_active_blocks"}  # fmt: skip


def test_every_ddl_statement_runs_on_every_node() -> None:
    for sql in [*LAYOUT.setup(), *RENDERED]:
        expected = 0 if sql.startswith(("INSERT", "SYSTEM")) else 1
        assert sql.count(ON) == expected, sql


def test_every_table_is_a_replicated_local_table_under_a_distributed_one() -> None:
    for table in PUBLIC:
        source = next(sql for sql in SOURCE if f"EXISTS {table} (" in sql)
        declared = re.search(r"ENGINE = (\w+)(?:\((.*?)\))?\s", source + " ")
        assert declared
        engine, args = declared.groups()
        local = next(sql for sql in RENDERED if f"EXISTS {table}_local {ON} (" in sql)
        if table in REFRESHED:  # filled on every node by its refreshable view
            assert f"ENGINE = {engine}" in local
        else:
            path = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
            assert f"ENGINE = Replicated{engine}({path}{', ' + args if args else ''})" in local
        assert source.split("ENGINE")[1].count("ORDER BY") == local.count("ORDER BY")
        distributed = next(sql for sql in RENDERED if f"EXISTS {table} {ON} (" in sql)
        assert f"ENGINE = Distributed('prod', 'journeys', '{table}_local', " in distributed
    assert set(LAYOUT.tables) == PUBLIC


def test_the_replicated_tables_keep_the_single_node_deduplication_window() -> None:
    for sql in RENDERED:
        assert "non_replicated_deduplication_window" not in sql
    windows = [sql for sql in RENDERED if "replicated_deduplication_window = 1000" in sql]
    assert len(windows) == sum("non_replicated_deduplication_window" in sql for sql in SOURCE)


def test_one_customer_one_shard_and_a_replayed_row_meets_its_copy() -> None:
    keys = {name: table.sharding_key for name, table in LAYOUT.tables.items()}
    customers = [
        "touchpoints",
        "journeys",
        "journey_signals",
        "promises",
        "resolutions",
        "signals_by_hour",
        "signals_by_department",
        "recent_journey_snapshots",
    ]
    for name in customers:
        assert keys[name] == "cityHash64(customer_id)", name
    assert keys["dead_letters"] == "cityHash64(source_topic, source_partition, source_offset)"
    assert keys["pipeline_metrics"] == "cityHash64(name, time, worker, topic, partition)"


def test_views_read_and_write_the_local_tables() -> None:
    views = [sql for sql in RENDERED if sql.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == sum(sql.startswith("CREATE MATERIALIZED VIEW") for sql in SOURCE)
    for sql in views:
        assert re.search(r"\bTO \w+_local AS\b", sql), sql
        read = re.findall(r"(?<!ARRAY )\b(?:FROM|JOIN)\s+(\w+)", sql)
        assert read and not set(read) & PUBLIC, sql


def test_plain_views_read_the_distributed_tables() -> None:
    """alert_outcomes joins an alert with its journey's actions, whose touchpoints may name
    other customers and so live on other shards: it reads the whole cluster."""
    assert LAYOUT.plain_views == {"alert_outcomes"}
    plain = [sql for sql in RENDERED if sql.startswith("CREATE VIEW")]
    assert len(plain) == sum(sql.startswith("CREATE VIEW") for sql in SOURCE) == 1
    for sql in plain:
        assert sql.startswith(f"CREATE VIEW IF NOT EXISTS alert_outcomes {ON} AS"), sql
        read = re.findall(r"(?<!ARRAY )\b(?:FROM|JOIN)\s+(\w+)", sql)
        assert set(read) == {"alerts", "touchpoints"} and "_local" not in sql, sql


def test_backfills_go_through_the_distributed_tables_in_the_foreground() -> None:
    inserts = [sql for sql in RENDERED if sql.startswith("INSERT")]
    assert len(inserts) == sum(sql.startswith("INSERT") for sql in SOURCE) > 0
    for sql in inserts:
        target = re.match(r"INSERT INTO (\w+)\nSETTINGS distributed_foreground_insert = 1\n", sql)
        assert target and target[1] in PUBLIC, sql


def test_a_dropped_table_is_dropped_everywhere_at_once() -> None:
    drops = [sql for sql in RENDERED if sql.startswith("DROP")]
    assert drops[:3] == [
        f"DROP VIEW IF EXISTS journeys_by_start_mv {ON} SYNC",
        f"DROP TABLE IF EXISTS journeys_by_start {ON} SYNC",
        f"DROP TABLE IF EXISTS journeys_by_start_local {ON} SYNC",
    ]
    # 0007 re-creates the refreshed aggregates with the model version in their key
    for table in ("journey_day_stats", "signal_day_cells", "journey_cell_days"):
        at = drops.index(f"DROP VIEW IF EXISTS {table}_mv {ON} SYNC")
        assert drops[at + 1 : at + 3] == [
            f"DROP TABLE IF EXISTS {table} {ON} SYNC",
            f"DROP TABLE IF EXISTS {table}_local {ON} SYNC",
        ]


def test_a_column_added_to_a_sorting_key_reaches_the_distributed_table_alone() -> None:
    local, distributed = [sql for sql in RENDERED if sql.startswith(("ALTER TABLE journeys ",
                          "ALTER TABLE journeys_local "))][:2]  # fmt: skip
    assert local == (f"ALTER TABLE journeys_local {ON}\n"
                     "    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String),\n"
                     "    MODIFY ORDER BY (journey_id, model_version)")  # fmt: skip
    column = "ADD COLUMN IF NOT EXISTS model_version LowCardinality(String)"
    assert distributed == f"ALTER TABLE journeys {ON}\n    {column}"


def test_the_printed_ddl_is_what_migrate_runs() -> None:
    text = script(LAYOUT, MIGRATIONS, "-- title")
    assert split_statements(text) == [*LAYOUT.setup(), *RENDERED]
    for migration in MIGRATIONS:
        assert f"-- {migration.version:04d}_{migration.name}\n" in text


def test_a_later_migration_is_laid_out_by_the_same_rules() -> None:
    later = Migration(99, "visits", """
CREATE TABLE IF NOT EXISTS visits (customer_id String, at DateTime, n UInt8,
    INDEX at_minmax at TYPE minmax GRANULARITY 1
) ENGINE = AggregatingMergeTree ORDER BY (customer_id, at);
CREATE MATERIALIZED VIEW IF NOT EXISTS visits_mv TO visits AS
SELECT customer_id, occurred_at AS at, 1 AS n FROM touchpoints AS t
WHERE journey_id IN (SELECT journey_id FROM journeys);
ALTER TABLE visits ADD COLUMN IF NOT EXISTS note String DEFAULT '' AFTER n;
ALTER TABLE visits MODIFY TTL at + INTERVAL 1 YEAR;
OPTIMIZE TABLE visits FINAL;
DROP TABLE IF EXISTS visits;
""")  # fmt: skip
    layout = ClusterLayout("prod", "journeys", [*MIGRATIONS, later])
    create_local, create_distributed, view, *rest = layout.statements(later)
    assert "EXISTS visits_local ON CLUSTER `prod` (" in create_local
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}" in create_local
    assert "INDEX" not in create_distributed
    assert "'visits_local', cityHash64(customer_id))" in create_distributed
    assert "FROM touchpoints_local AS t" in view and "FROM journeys_local)" in view
    assert rest == [
        f"ALTER TABLE visits_local {ON} ADD COLUMN IF NOT EXISTS note String DEFAULT '' AFTER n",
        f"ALTER TABLE visits {ON} ADD COLUMN IF NOT EXISTS note String DEFAULT '' AFTER n",
        f"ALTER TABLE visits_local {ON} MODIFY TTL at + INTERVAL 1 YEAR",
        f"OPTIMIZE TABLE visits_local {ON} FINAL",
        f"DROP TABLE IF EXISTS visits {ON} SYNC",
        f"DROP TABLE IF EXISTS visits_local {ON} SYNC",
    ]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("RENAME TABLE touchpoints TO visits", "no rule for this kind of statement"),
        ("CREATE MATERIALIZED VIEW v ENGINE = Memory AS SELECT 1 FROM touchpoints", "without TO"),
        ("ALTER TABLE touchpoints ADD COLUMN x UInt8, MODIFY TTL toDate(occurred_at)", "split"),
        ("CREATE TABLE t (a String) ENGINE = ReplicatedMergeTree ORDER BY a", "MergeTree family"),
        ("CREATE TABLE t (a String) ENGINE = Memory", "MergeTree family"),
        ("CREATE TABLE t ON CLUSTER c (a String) ENGINE = MergeTree ORDER BY a", "ON CLUSTER"),
        ("INSERT INTO elsewhere.touchpoints SELECT 1", "names a database"),
        ("DROP TABLE IF EXISTS never_created", "no migration created"),
    ],
)
def test_a_statement_without_a_rule_fails_and_names_it(sql: str, reason: str) -> None:
    later = Migration(7, "odd", sql + ";\n")
    with pytest.raises(ClusterLayoutError, match=reason) as raised:
        ClusterLayout("prod", "journeys", [*MIGRATIONS, later])
    assert f"migration 0007_odd, statement 1 ({sql[:20]}" in str(raised.value)


# --- the command and the ledger ------------------------------------------------------------
class RecordingStore:
    """What a cluster node answers migrate, and what migrate runs on it."""

    database = "journeys"

    def __init__(self, ledger_engine: str = "ReplicatedReplacingMergeTree", clusters: int = 1):
        self.ledger_engine, self.clusters = ledger_engine, clusters
        self.executed: list[str] = []
        self.ledger: list[Mapping[str, Any]] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.executed.append(sql)

    def insert(
        self, table: str, rows: Sequence[Mapping[str, Any]] | bytes, dedup_token: str | None = None
    ) -> None:
        assert table == "schema_migrations" and not isinstance(rows, bytes)
        self.ledger += rows

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if "system.clusters WHERE" in sql:
            return [{"shards": 2 * self.clusters, "nodes": 4 * self.clusters}]
        if "DISTINCT cluster" in sql:
            return [{"cluster": "default"}]
        if "system.macros" in sql:
            return [{"macro": "shard"}, {"macro": "replica"}]
        if "system.settings" in sql:
            return [{"name": "distributed_foreground_insert", "value": "1"},
                    {"name": "distributed_product_mode", "value": "global"}]  # fmt: skip
        if "engine_full FROM system.tables" in sql:  # the retention's look at the TTLs
            return [{"name": "touchpoints", "engine_full": "Distributed('prod', 'journeys', "
                     "'touchpoints_local', cityHash64(customer_id))"},
                    {"name": "touchpoints_local", "engine_full": "ReplicatedMergeTree("
                     "'/p', '{replica}') ORDER BY event_id"}]  # fmt: skip
        if "system.tables" in sql:
            return [{"engine": self.ledger_engine}]
        assert "FROM schema_migrations FINAL" in sql, sql
        return [{"version": r["version"], "checksum": r["checksum"]} for r in self.ledger]

    def query_bytes(self, sql: str, params: Mapping[str, Any] | None = None) -> bytes:
        raise AssertionError(f"migrate reads no bulk rows: {sql}")

    def close(self) -> None: ...


def migrate(*args: str, **env: str) -> Any:
    defaults = {"JOURNEYS_CLICKHOUSE_MODE": "server", "JOURNEYS_DATA_DIR": "/nonexistent",
                "JOURNEYS_CLICKHOUSE_DATABASE": "journeys"}  # fmt: skip
    return CliRunner().invoke(cli, ["migrate", *args], env={**defaults, **env})


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[[RecordingStore], None]:
    """`journeys migrate` reaches `store` instead of a server."""

    def to(store: RecordingStore) -> None:
        monkeypatch.setattr("pipeline.cli.store.get_store", lambda _settings: store)

    return to


def test_dry_run_prints_the_cluster_ddl_and_connects_to_nothing() -> None:
    result = migrate("--cluster", "prod", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output == script(LAYOUT, MIGRATIONS, result.output.split("\n\n")[0])
    assert "CREATE DATABASE IF NOT EXISTS `journeys` ON CLUSTER `prod`" in result.output


def test_migrate_applies_the_cluster_ddl_through_the_configured_store(
    connect: Callable[[RecordingStore], None],
) -> None:
    store = RecordingStore()
    connect(store)
    result = migrate("--cluster", "prod")
    assert result.exit_code == 0, result.output
    assert store.executed == [*LAYOUT.setup(), *RENDERED]
    assert [r["checksum"] for r in store.ledger] == [m.checksum for m in MIGRATIONS]
    assert "cluster prod: 2 shard(s), 4 node(s)" in result.output
    assert f"applied {len(MIGRATIONS)} migration(s) to journeys" in result.output
    again = migrate("--cluster", "prod")
    assert "is up to date" in again.output and len(store.ledger) == len(MIGRATIONS)
    retained = migrate("--cluster", "prod", JOURNEYS_RETENTION_DAYS_EVENTS="30")
    assert retained.exit_code == 0, retained.output
    assert store.executed[-1] == ("ALTER TABLE touchpoints_local ON CLUSTER `prod` MODIFY TTL "
                                  "toDateTime(occurred_at) + toIntervalDay(30)")  # fmt: skip


def test_migrate_names_what_stops_it(connect: Callable[[RecordingStore], None]) -> None:
    connect(RecordingStore(clusters=0))
    unknown = migrate("--cluster", "prod")
    assert unknown.exit_code == 1
    assert "cluster 'prod' is not in this server's remote_servers (it knows: default)" in (
        unknown.output
    )
    embedded = migrate("--cluster", "prod", JOURNEYS_CLICKHOUSE_MODE="embedded")
    assert embedded.exit_code == 2 and "JOURNEYS_CLICKHOUSE_MODE=server" in embedded.output
    named = migrate("--cluster", "two words", "--dry-run")
    assert named.exit_code == 2 and "is not a cluster name" in named.output


def test_a_database_keeps_the_layout_it_was_migrated_in() -> None:
    single = RecordingStore(ledger_engine="ReplacingMergeTree")
    with pytest.raises(StoreError, match="migrated for one server"):
        apply_migrations(single, MIGRATIONS, layout=LAYOUT)
    assert not single.ledger
    clustered = RecordingStore()
    with pytest.raises(StoreError, match=r"0001_core_tables, .* `journeys migrate --cluster"):
        apply_migrations(clustered, MIGRATIONS)
    # Up to date, as the worker finds it at start: nothing to apply, nothing refused.
    apply_migrations(clustered, MIGRATIONS, layout=LAYOUT)
    assert apply_migrations(clustered, MIGRATIONS) == []
