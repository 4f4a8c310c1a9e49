"""Issue 22 on the cluster layout (`journeys migrate --cluster`): erasure and retention where
the public names are Distributed tables, which take no mutation (ALTER ... DELETE and
MODIFY TTL fail on them), over `*_local` tables.

On the one-node cluster of the ClickHouse test server (tests/support/clickhouse_cluster.py):
real Distributed tables over local tables; `ON CLUSTER` is run by the node itself, there
being no DDL queue, and the local tables are not replicated. What needs several nodes (the
statements reaching every shard and replica) is not shown here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.store import Store
from pipeline.store.erase import Eraser
from pipeline.store.server import ServerStore
from pipeline.store.topology import Topology
from tests.support.clickhouse_cluster import CLUSTER
from tests.support.clickhouse_process import ClickHouseProcess
from tests.support.erasure import check_erasure_against_chdb
from tests.support.worker_process import journeys

pytestmark = pytest.mark.integration
RETAINED = {"touchpoints", "dead_letters", "rejections_per_hour", "journeys", "journey_signals",
            "signals_by_hour", "signals_by_department"}  # fmt: skip


@pytest.fixture
def cluster_env(
    clickhouse_cluster: ClickHouseProcess, cluster_store: ServerStore
) -> dict[str, str]:
    """Settings naming that database, with retention settings."""
    return os.environ | clickhouse_cluster.settings_env(cluster_store.database) | {
        "JOURNEYS_RETENTION_DAYS_EVENTS": "30", "JOURNEYS_RETENTION_DAYS_JOURNEYS": "400",
    }  # fmt: skip


def engines(store: Store) -> dict[str, str]:
    rows = store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
    )
    return {str(r["name"]): str(r["engine_full"]) for r in rows}


def test_migrate_sets_the_retention_ttls_on_the_local_tables(
    cluster_env: dict[str, str], cluster_store: ServerStore
) -> None:
    """`journeys migrate` (as the worker's start) on a cluster's database: the TTLs go to
    the local tables, ON CLUSTER; the Distributed tables have none."""
    said = journeys("migrate", env=cluster_env)
    assert f"ALTER TABLE touchpoints_local ON CLUSTER `{CLUSTER}` MODIFY TTL" in said, said
    laid_out = engines(cluster_store)
    assert laid_out["touchpoints"].startswith(f"Distributed('{CLUSTER}'")
    for table in RETAINED:
        assert " TTL " in laid_out[f"{table}_local"], table
        assert " TTL " not in laid_out[table], table
    assert "TTL toDateTime(occurred_at) + toIntervalDay(30)" in laid_out["touchpoints_local"]
    assert "TTL toDateTime(last_event_at) + toIntervalDay(400)" in laid_out["journeys_local"]
    again = journeys("migrate", env=cluster_env)
    assert "MODIFY TTL" not in again and "up to date" in again, again  # in place: no ALTER
    # The worker's start applies the same settings; 0 removes the TTLs, on the locals.
    removed = journeys(
        "migrate",
        env=cluster_env
        | {"JOURNEYS_RETENTION_DAYS_EVENTS": "0", "JOURNEYS_RETENTION_DAYS_JOURNEYS": "0"},
    )
    assert f"ALTER TABLE touchpoints_local ON CLUSTER `{CLUSTER}` REMOVE TTL" in removed, removed
    assert not any(" TTL " in engines(cluster_store)[f"{t}_local"] for t in RETAINED)


def test_erasing_on_a_cluster(cluster_store: ServerStore, chdb_dir: Path) -> None:
    """The erasure of the other stores, its deletes on the local tables; the reference on
    chdb, as for the server path."""
    assert Eraser(cluster_store).topology == Topology(CLUSTER)
    check_erasure_against_chdb(cluster_store, chdb_dir)
