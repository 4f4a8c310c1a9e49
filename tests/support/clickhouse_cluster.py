"""A one-node ClickHouse cluster for the test server: `clickhouse_http --cluster NAME`.

The cluster layout (`journeys migrate --cluster`) needs what chdb has not: Keeper, the
distributed DDL queue (chdb refuses `ON CLUSTER`: "Replicated DDL queries are disabled") and
replication. What it has is real: a `remote_servers` cluster from a config file, one shard
whose one replica is this node (same host and `tcp_port`, so the Distributed engine reads
and writes it in-process, as a server does its own replica), the `shard` and `replica`
macros, and Distributed tables over it. So the test server runs the cluster's statements as
a one-node cluster runs them, less the two things only Keeper gives:

* `ON CLUSTER <name>` is dropped: the node runs the statement itself, as the DDL queue would
  have it run (on a one-node cluster the only host);
* `Replicated<engine>(path, replica, args...)` becomes `<engine>(args...)`: one replica,
  keeping its insert de-duplication (`replicated_deduplication_window` becomes the
  single-node `non_replicated_deduplication_window`, as the layout renamed it).

What this cannot show: a statement reaching other nodes (more shards, more replicas),
replication, and the DDL queue's own behaviour (one replica per shard for Replicated tables,
`distributed_ddl_task_timeout`). tests/integration/test_store_cluster.py emulates two shards
for what they read; these stay unverified on a real multi-node cluster.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from pipeline.store import Store, load_migrations
from pipeline.store.cluster import ClusterLayout

CLUSTER = "journeys_test"  # the cluster the test fixtures' node belongs to
# The readers' and the writer's profiles as docs/production.md asks for them on a cluster.
CLUSTER_DEFAULTS = {"distributed_product_mode": "global", "distributed_foreground_insert": "1"}
# The node's own TCP port, as its replica in remote_servers names it: equal host and port
# make the replica local (no connection is made; chdb listens on none).
NODE_PORT = 9000
_ON_CLUSTER = re.compile(r"\s+ON\s+CLUSTER\s+(?:`(?:[^`\\]|\\.)*`|[\w.-]+)", re.IGNORECASE)
_REPLICATED = re.compile(r"\bReplicated(\w*MergeTree)\(\s*'[^']*'\s*,\s*'[^']*'\s*(?:,\s*)?")
_WINDOW = re.compile(r"\breplicated_deduplication_window\b")


def write_config(directory: Path, cluster: str) -> Path:
    """A config file giving chdb the cluster `cluster` (one shard, one replica: this node)
    and the macros the cluster layout's replica paths name."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "cluster.xml"
    config.write_text(f"""<clickhouse>
    <tcp_port>{NODE_PORT}</tcp_port>
    <remote_servers>
        <{cluster}>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>{NODE_PORT}</port></replica>
            </shard>
        </{cluster}>
    </remote_servers>
    <macros><shard>01</shard><replica>node-1</replica></macros>
</clickhouse>
""")
    return config


def one_node(sql: str) -> str:
    """What the cluster's only node runs for `sql` (see the module's docstring)."""
    sql = _REPLICATED.sub(r"\1(", _ON_CLUSTER.sub("", sql))
    return _WINDOW.sub("non_replicated_deduplication_window", sql)


def lay_out(store: Store, cluster: str = CLUSTER) -> None:
    """`journeys migrate --cluster` on this node, less its guard: the guard tells a cluster's
    database by its Replicated `schema_migrations`, which one_node() makes a plain table, so
    apply_migrations would refuse. The same statements, recorded as apply_migrations does;
    afterwards `journeys migrate` and the worker's start find every migration applied."""
    layout = ClusterLayout(cluster, store.database)
    for statement in layout.setup():
        store.execute(statement)
    for migration in load_migrations():
        for statement in layout.statements(migration):
            store.execute(statement)
        store.insert("schema_migrations", [{
            "version": migration.version, "name": migration.name,
            "checksum": migration.checksum,
            "applied_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }])  # fmt: skip
