"""Which tables a statement that changes stored rows or a table's settings must name.

On one server (or chdb) the tables themselves. On a cluster laid out by `journeys migrate
--cluster` (pipeline/store/cluster.py) the public names are Distributed tables, which take
no mutation: `ALTER TABLE touchpoints DELETE` or `MODIFY TTL` fails there (NOT_IMPLEMENTED),
and a lightweight DELETE is refused alike. Such statements go to every node's
`<table>_local` with ON CLUSTER; for the Replicated local tables the distributed DDL runs
them on one replica per shard and the replicas follow, and `mutations_sync = 2` waits until
every replica has rewritten its parts. Reads and inserts keep the public names.

The store tells which layout it holds: on a cluster `touchpoints` is a Distributed table,
whose engine names the cluster, so neither the worker nor `journeys erase` needs a setting
for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.store.base import Store
from pipeline.store.ddl import quote_name

LOCAL = "_local"
# Cluster names are letters, digits, '_', '-' and '.' (cluster_name_problem): no quote in them.
_DISTRIBUTED = re.compile(r"^Distributed\('([^']+)'")


@dataclass(frozen=True)
class Topology:
    cluster: str | None = None  # None: one server (or chdb)

    @property
    def clustered(self) -> bool:
        return self.cluster is not None

    def mutable(self, table: str) -> str:
        """The table clause of an ALTER (DELETE, MODIFY TTL) on the rows behind `table`."""
        if self.cluster is None:
            return table
        return f"{table}{LOCAL} ON CLUSTER {quote_name(self.cluster)}"

    def local(self, table: str) -> str:
        """The name in `system.tables` whose engine holds `table`'s TTL and parts."""
        return table if self.cluster is None else table + LOCAL

    @property
    def insert_settings(self) -> str:
        """An INSERT ... SELECT's SETTINGS clause: through a Distributed table, rows reach
        their shards before the insert returns (as `journeys migrate --cluster`'s
        backfills), so what comes next reads them."""
        return "SETTINGS distributed_foreground_insert = 1 " if self.cluster else ""


SINGLE_NODE = Topology()


def distributed_cluster(engine_full: str) -> str | None:
    """The cluster a Distributed table's `engine_full` reads from; None for other engines."""
    match = _DISTRIBUTED.match(engine_full)
    return match.group(1) if match else None


def topology_of(store: Store) -> Topology:
    """One server, or the cluster whose Distributed tables the store's database holds."""
    rows = store.query(
        "SELECT engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'touchpoints'"
    )
    return Topology(distributed_cluster(str(rows[0]["engine_full"])) if rows else None)
