"""`journeys migrate --cluster NAME`: the same migrations, laid out for a sharded, replicated
ClickHouse cluster (docs/production.md#a-clickhouse-cluster).

Every migration file is rendered statement by statement, so a migration added later needs
nothing here unless it uses a statement shape no rule below covers; rendering then fails and
names the statement (tests/unit/test_store_cluster.py renders every file, and fails with it).

* CREATE TABLE t: `t_local` on every node, `Replicated<engine>` under
  `/clickhouse/tables/{shard}/{database}/{table}` and `{replica}`, with the same columns,
  sorting key, partitions, TTL, version and is_deleted columns, and the single-node
  de-duplication window as `replicated_deduplication_window`; and `t` itself, a Distributed
  table over every shard's `t_local`, with the same columns, so the worker, the panels and
  the report keep every name they use.
* The sharding key puts on one shard whatever ReplacingMergeTree or AggregatingMergeTree
  must fold together: they fold only within a shard, and FINAL and GROUP BY through a
  Distributed table resolve versions shard by shard. A table with a customer_id is sharded
  by it, so a customer's touchpoints, journeys, signals, promises and cases live on one shard
  and every view's rows land beside their sources; any other table by its sorting key
  (dead_letters by source position, pipeline_metrics by sample).
* A materialized view is created on every node, reading the local source and writing the
  local target: it fires on the shard that received the insert, once per shard (a replica
  that fetches the part does not fire it again), and the Replicated target carries its rows
  to the shard's other replicas.
* A refreshable view's target stays an ordinary table on every node, and the view reads the
  local tables: each replica recomputes its own shard's figures (an open-source server
  coordinates refreshes between replicas only in a Replicated database, and an uncoordinated
  refresh would swap a Replicated target under the other replica). The Distributed table over
  the targets reads one replica per shard; every refreshed aggregate folds rows that live on
  one shard (a journey, a promise, a case, a signal) into counts, sums and uniq states that
  add up across shards.
* A plain view (CREATE VIEW, computed when read: alert_outcomes) is created on every node and
  reads the Distributed tables, so it answers over the whole cluster from any node. Not per
  shard over the local tables: what it joins need not share a shard (an alert's journey may
  hold events of other customer ids than the alert's, whose touchpoints live on their own
  customers' shards). A JOIN or IN over a second Distributed table inside it runs once over
  the cluster with distributed_product_mode = 'global', as the report's subqueries do.
* INSERT ... SELECT (a backfill) writes through the Distributed table, synchronously, so each
  row lands on the shard its sharding key names: where the views write the same key.
* ALTER TABLE: column changes go to the local and the Distributed tables, anything else to
  the local tables only; an ALTER that adds a column and appends it to the sorting key
  (MODIFY ORDER BY, which ClickHouse accepts only in the same statement) stays whole on the
  local tables and gives the Distributed table the column alone.
* SYSTEM WAIT VIEW has no ON CLUSTER form: it waits on the node migrate is connected to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.store.base import Store, StoreError
from pipeline.store.ddl import (
    Statement,
    TableParts,
    Token,
    edit,
    name_at,
    name_of,
    quote_name,
    quote_string,
    table_parts,
)
from pipeline.store.migrations import LEDGER_DDL, Layout, Migration, load_migrations

LOCAL = "_local"
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME = "{replica}"
# The ledger is one table replicated to every node (no {shard} in its path), so whichever
# node migrate talks to next knows what was applied.
LEDGER_PATH = "/clickhouse/tables/all/{database}/{table}"
LEDGER_REPLICA = "{shard}-{replica}"
# Single-node tables keep insert tokens only with this setting; replicated ones always do,
# for as many blocks as the replicated setting says: the same window, replicated.
WINDOW_SETTINGS = {"non_replicated_deduplication_window": "replicated_deduplication_window"}
# The worker's batches and the backfills must reach the shards before the insert returns:
# in the background, a batch is acknowledged (and its Kafka offsets committed) while it is
# still on the receiving node's disk.
FOREGROUND = "distributed_foreground_insert = 1"
CUSTOMER_KEY = "cityHash64(customer_id)"
COLUMN_COMMANDS = {"ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN", "RENAME COLUMN", "COMMENT COLUMN"}
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")


class ClusterLayoutError(StoreError):
    """A bad cluster name, or a migration statement the cluster layout has no rule for."""


@dataclass(frozen=True)
class Table:
    """A table of the public schema, as the cluster holds it: `name` is Distributed over
    `name_local`, which is Replicated unless a refreshable view fills it on every node."""

    name: str
    columns: tuple[str, ...]  # as written in the migration (names, types, defaults)
    sharding_key: str
    replicated: bool


def cluster_name_problem(cluster: str) -> str | None:
    """Why `cluster` cannot be a cluster's name here, or None when it can."""
    if _CLUSTER_NAME.match(cluster):
        return None
    return (
        f"{cluster!r} is not a cluster name: expected the name of a cluster in the servers' "
        "remote_servers (letters, digits, '_', '-', '.')"
    )


class ClusterLayout:
    """The migrations rendered for `cluster`, whose nodes hold `database`."""

    clustered = True

    def __init__(self, cluster: str, database: str, migrations: list[Migration] | None = None):
        problem = cluster_name_problem(cluster)
        if problem:
            raise ClusterLayoutError(problem)
        self.cluster, self.database = cluster, database
        self.on_cluster = f"ON CLUSTER {quote_name(cluster)}"
        migrations = load_migrations() if migrations is None else migrations
        self.refreshed = _refreshed_targets(migrations)
        self.tables: dict[str, Table] = {}
        self.views: set[str] = set()  # every view, created on every node
        self.plain_views: set[str] = set()  # those of them reading the Distributed tables
        self._rendered = {(m.version, m.checksum): self._render(m) for m in migrations}

    def setup(self) -> list[str]:
        database = quote_name(self.database)
        return [f"CREATE DATABASE IF NOT EXISTS {database} {self.on_cluster}", self._ledger()]

    def statements(self, migration: Migration) -> list[str]:
        rendered = self._rendered.get((migration.version, migration.checksum))
        if rendered is None:
            raise ClusterLayoutError(f"migration {_label(migration)} was not rendered")
        return rendered

    # --- rendering ----------------------------------------------------------------------
    def _render(self, migration: Migration) -> list[str]:
        out = []
        for number, sql in enumerate(migration.statements, 1):
            try:
                out += self._statement(Statement(sql))
            except (ClusterLayoutError, ValueError) as exc:
                head = " ".join(sql.split())[:60]
                raise ClusterLayoutError(
                    f"migration {_label(migration)}, statement {number} ({head} ...): {exc}"
                ) from None
        return out

    def _statement(self, s: Statement) -> list[str]:
        if s.starts("CREATE", "TABLE"):
            return self._create_table(s)
        if s.starts("CREATE", "MATERIALIZED", "VIEW"):
            return [self._create_view(s, 3)]
        if s.starts("CREATE", "VIEW"):
            return [self._create_view(s, 2)]
        if s.starts("DROP", "TABLE") or s.starts("DROP", "VIEW"):
            return self._drop(s)
        if s.starts("ALTER", "TABLE"):
            return self._alter(s)
        if s.starts("INSERT", "INTO"):
            return [self._insert(s)]
        if s.starts("SYSTEM", "WAIT", "VIEW"):
            return [s.sql]
        if s.starts("TRUNCATE") or s.starts("OPTIMIZE", "TABLE"):
            return [self._on_local(s, 2 if s.keywords(1, 1) == ["TABLE"] else 1)]
        raise ClusterLayoutError(
            "the cluster layout has no rule for this kind of statement: add one to "
            "pipeline/store/cluster.py"
        )

    def _create_table(self, s: Statement) -> list[str]:
        at = _name_at(s, 2)
        token, name = s.tokens[at], name_of(s.tokens[at])
        if name.endswith(LOCAL):
            raise ClusterLayoutError(f"{name} ends in {LOCAL}, the cluster's local tables' suffix")
        parts = table_parts(s, at)
        replicated = name not in self.refreshed
        changes = [(token.start, token.end, f"{self._local(token)} {self.on_cluster}")]
        if replicated:
            engine = _replicated(parts, REPLICA_PATH, REPLICA_NAME)
            changes.append((*parts.engine_span, engine))
            changes += [(k.start, k.end, WINDOW_SETTINGS[k.text]) for k in parts.settings
                        if k.text in WINDOW_SETTINGS]  # fmt: skip
        table = Table(name, parts.columns, _sharding_key(parts), replicated)
        self.tables[name] = table
        columns = ",\n    ".join(table.columns)
        engine_args = ", ".join([quote_string(self.cluster), quote_string(self.database),
                                 quote_string(name + LOCAL), table.sharding_key])  # fmt: skip
        distributed = (
            f"{s.text(0, at)} {token.text} {self.on_cluster} (\n    {columns}\n)"
            f" ENGINE = Distributed({engine_args})"
        )
        return [edit(s.sql, changes), distributed]

    def _create_view(self, s: Statement, keywords: int) -> str:
        at = _name_at(s, keywords)
        token = s.tokens[at]
        select = s.find("AS", at + 1)
        if select is None:
            raise ClusterLayoutError("a view needs AS SELECT")
        changes = [(token.end, token.end, f" {self.on_cluster}")]
        if s.starts("CREATE", "MATERIALIZED"):
            changes += self._materialized(s, at, select)
        else:  # reads the public names as written: the Distributed tables
            self.plain_views.add(name_of(token))
        self.views.add(name_of(token))
        return edit(s.sql, changes)

    def _materialized(self, s: Statement, at: int, select: int) -> list[tuple[int, int, str]]:
        to = s.find("TO", at + 1, select)
        if to is None:
            raise ClusterLayoutError(
                "a materialized view without TO keeps its rows in an inner table that no "
                "Distributed table reads: give it a TO table"
            )
        target = s.tokens[to + 1]
        table = self.tables.get(name_of(target))
        if table is None:
            raise ClusterLayoutError(f"writes to {name_of(target)}, which no migration created")
        if table.replicated == (s.find("REFRESH", at + 1, select) is not None):
            raise ClusterLayoutError(
                f"{table.name} is filled by an insert-time view and by a refreshable one"
            )
        return [(target.start, target.end, self._local(target)), *self._sources(s, select + 1)]

    def _sources(self, s: Statement, start: int) -> list[tuple[int, int, str]]:
        """The tables a view's query reads (at any depth), renamed to their local tables."""
        changes = []
        for index in range(start, len(s.tokens)):
            before = s.tokens[index - 1].upper
            if before not in ("FROM", "JOIN") or s.tokens[index - 2].upper == "ARRAY":
                continue
            token = s.tokens[index]
            after = s.tokens[index + 1].text if index + 1 < len(s.tokens) else ""
            if token.name in self.tables and after not in (".", "("):
                changes.append((token.start, token.end, self._local(token)))
        return changes

    def _drop(self, s: Statement) -> list[str]:
        at = _name_at(s, 2)
        token, name = s.tokens[at], name_of(s.tokens[at])
        if s.text(at + 1, len(s.tokens)).upper() not in ("", "SYNC"):
            raise ClusterLayoutError("the cluster layout drops with IF EXISTS and SYNC only")
        # SYNC: an Atomic database removes a dropped Replicated table, and its Keeper path,
        # only minutes later; a later migration creating the name again would find it taken.
        head = s.text(0, at)
        if name in self.views:
            self.views.discard(name)
            self.plain_views.discard(name)
            return [f"{head} {token.text} {self.on_cluster} SYNC"]
        if self.tables.pop(name, None) is None:
            raise ClusterLayoutError(f"drops {name}, which no migration created")
        return [f"{head} {name_sql} {self.on_cluster} SYNC"
                for name_sql in (token.text, self._local(token))]  # fmt: skip

    def _alter(self, s: Statement) -> list[str]:
        at = _name_at(s, 2)
        token = s.tokens[at]
        if name_of(token) not in self.tables:
            raise ClusterLayoutError(f"alters {name_of(token)}, which is not a table of the schema")
        commands = s.split(at + 1, len(s.tokens))
        changes = {" ".join(s.keywords(start, 2)) in COLUMN_COMMANDS for start, _ in commands}
        local = self._on_local(s, 2)
        if changes == {False}:
            return [local]
        if changes == {True}:  # the Distributed table must show the same columns
            return [local, edit(s.sql, [(token.end, token.end, f" {self.on_cluster}")])]
        if all(
            " ".join(s.keywords(start, 3)) == "MODIFY ORDER BY"
            or " ".join(s.keywords(start, 2)) in COLUMN_COMMANDS
            for start, _ in commands
        ):
            # A column joins a sorting key only in the ALTER that adds it (0007), so the two
            # stay one statement on the local tables; the Distributed table has no sorting
            # key and takes the column changes alone.
            columns = [s.text(a, b) for a, b in commands
                       if " ".join(s.keywords(a, 2)) in COLUMN_COMMANDS]  # fmt: skip
            head = f"{s.text(0, at + 1)} {self.on_cluster}"
            return [local, f"{head}\n    " + ",\n    ".join(columns)]
        raise ClusterLayoutError(
            "mixes column changes (the Distributed table takes them too) with other changes "
            "(the local tables only): split it into two ALTER statements"
        )

    def _insert(self, s: Statement) -> str:
        at = _name_at(s, 3 if s.keywords(2, 1) == ["TABLE"] else 2)
        if name_of(s.tokens[at]) not in self.tables:
            raise ClusterLayoutError(f"inserts into {name_of(s.tokens[at])}, not a table")
        body = at + 1
        if body < len(s.tokens) and s.tokens[body].text == "(":
            body = s.closing(body) + 1
        if body >= len(s.tokens) or s.tokens[body].upper == "SETTINGS":
            raise ClusterLayoutError("an INSERT with SETTINGS of its own is not laid out")
        start = s.tokens[body].start
        return edit(s.sql, [(start, start, f"SETTINGS {FOREGROUND}\n")])

    def _on_local(self, s: Statement, keywords: int) -> str:
        at = _name_at(s, keywords)
        token = s.tokens[at]
        if name_of(token) not in self.tables:
            raise ClusterLayoutError(f"{name_of(token)} is not a table of the schema")
        return edit(s.sql, [(token.start, token.end, f"{self._local(token)} {self.on_cluster}")])

    def _ledger(self) -> str:
        s = Statement(LEDGER_DDL.strip())
        at = _name_at(s, 2)
        parts = table_parts(s, at)
        engine = _replicated(parts, LEDGER_PATH, LEDGER_REPLICA)
        end = s.tokens[at].end
        return edit(s.sql, [(end, end, f" {self.on_cluster}"), (*parts.engine_span, engine)])

    @staticmethod
    def _local(token: Token) -> str:
        name = name_of(token) + LOCAL
        return quote_name(name) if token.kind == "quoted" else name


def script(layout: Layout, migrations: list[Migration], title: str) -> str:
    """Every statement `layout` would run for `migrations`, as one SQL text to read or run
    (`title` is its header comment)."""
    blocks = [title.rstrip() + "\n", *(f"{sql.strip()};\n" for sql in layout.setup())]
    for migration in migrations:
        statements = layout.statements(migration)
        body = "\n\n".join(f"{sql.strip()};" for sql in statements)
        blocks.append(f"-- {_label(migration)}\n{body}\n")
    return "\n".join(blocks) + "\n"


def check_cluster(store: Store, cluster: str) -> list[str]:
    """What the node behind `store` says about `cluster`: a StoreError when the layout cannot
    work there (no such cluster, no shard or replica macro), else lines worth showing, the
    last ones warnings about the connected user's settings."""
    rows = store.query(
        "SELECT uniqExact(shard_num) AS shards, count() AS nodes FROM system.clusters "
        "WHERE cluster = {cluster:String}",
        {"cluster": cluster},
    )
    if not rows or not int(rows[0]["nodes"]):
        known = [r["cluster"] for r in store.query("SELECT DISTINCT cluster FROM system.clusters")]
        raise StoreError(
            f"cluster {cluster!r} is not in this server's remote_servers (it knows: "
            f"{', '.join(sorted(known)) or 'none'}); see docs/production.md#a-clickhouse-cluster"
        )
    macros = {r["macro"] for r in store.query("SELECT macro FROM system.macros")}
    missing = sorted({"shard", "replica"} - macros)
    if missing:
        raise StoreError(
            f"this node defines no {' or '.join(missing)} macro: the local tables' replica path "
            f"{REPLICA_PATH} and name {REPLICA_NAME} need both (<macros> in its config)"
        )
    notes = [f"cluster {cluster}: {rows[0]['shards']} shard(s), {rows[0]['nodes']} node(s)"]
    settings = {r["name"]: str(r["value"]) for r in store.query(
        "SELECT name, value FROM system.settings "
        "WHERE name IN ('distributed_foreground_insert', 'distributed_product_mode')"
    )}  # fmt: skip
    if settings.get("distributed_foreground_insert", "0") in ("0", "false"):
        notes.append(
            "warning: this user inserts into Distributed tables in the background "
            "(distributed_foreground_insert = 0): the worker would commit offsets for rows "
            "still on the way to their shard; set it to 1 in the writer's profile"
        )
    if settings.get("distributed_product_mode", "deny") != "global":
        notes.append(
            "warning: distributed_product_mode is not 'global' for this user: the report's "
            "and the panels' IN subqueries over Distributed tables fail ('deny') or see one "
            "shard ('local'); set it to 'global' in the readers' and the writer's profiles"
        )
    return notes


# --- the rules' helpers --------------------------------------------------------------------
def _name_at(s: Statement, start: int) -> int:
    at = name_at(s, start)
    if s.keywords(at + 1, 2) == ["ON", "CLUSTER"]:
        raise ClusterLayoutError("says ON CLUSTER already; migrations are written for one server")
    return at


def _replicated(parts: TableParts, path: str, replica: str) -> str:
    if parts.engine.startswith("Replicated") or not parts.engine.endswith("MergeTree"):
        raise ClusterLayoutError(
            f"engine {parts.engine}: the cluster layout replicates the MergeTree family, "
            "written for one server"
        )
    args = [quote_string(path), quote_string(replica)]
    if parts.engine_args:
        args.append(parts.engine_args)  # version, is_deleted, ... as they were
    return f"Replicated{parts.engine}({', '.join(args)})"


def _sharding_key(parts: TableParts) -> str:
    """The customer where a table has one; else the table's sorting key, so that the rows
    its engine folds together (one replacing key, one aggregate cell) meet on one shard."""
    if "customer_id" in parts.column_names:
        return CUSTOMER_KEY
    key = Statement(parts.order_by)
    tokens = key.tokens
    inner = parts.order_by
    if tokens and tokens[0].text == "(" and key.closing(0) == len(tokens) - 1:
        inner = key.text(1, len(tokens) - 1)
    elif len(tokens) > 2 and tokens[0].upper == "TUPLE" and key.closing(1) == len(tokens) - 1:
        inner = key.text(2, len(tokens) - 1)
    return f"cityHash64({inner})" if inner.strip() else "rand()"


def _refreshed_targets(migrations: list[Migration]) -> set[str]:
    """The tables a refreshable view fills, in any migration (they are created before it)."""
    targets = set()
    for migration in migrations:
        for number, sql in enumerate(migration.statements, 1):
            try:
                s = Statement(sql)
            except ValueError as exc:
                where = f"migration {_label(migration)}, statement {number}"
                raise ClusterLayoutError(f"{where}: {exc}") from None
            if not s.starts("CREATE", "MATERIALIZED", "VIEW"):
                continue
            select = s.find("AS", 3)
            to = s.find("TO", 3, select)
            if to is not None and s.find("REFRESH", 3, select) is not None:
                targets.add(name_of(s.tokens[to + 1]))
    return targets


def _label(migration: Migration) -> str:
    return f"{migration.version:04d}_{migration.name}"
