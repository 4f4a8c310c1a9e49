"""Real services for integration tests: chdb, and a ClickHouse HTTP endpoint on chdb for
the server path (tests/support/clickhouse_http.py). The Kafka broker's fixtures are in the
shared fixtures layer (tests/support/kafka.py, listed in tests/conftest.py).

A service that cannot start fails the tests that need it (the fixture raises); nothing here
skips.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.store import Store, apply_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded
from pipeline.store.server import ServerStore
from tests.support.clickhouse_cluster import CLUSTER, lay_out
from tests.support.clickhouse_process import ClickHouseProcess
from tests.support.dashboards.engine_rows import SimulatedMonth, simulate_month

pytestmark = pytest.mark.integration


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A topic / group / database name no other test uses."""
    base = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return f"t_{base}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def store(chdb_dir: Path) -> Store:
    """The session's chdb, on a random database with every migration applied.

    chdb allows one data directory per process, so all tests of a session share it; a test
    that needs a clean slate takes `fresh_store` (a database of its own) instead.
    """
    migrated = open_embedded(chdb_dir, f"journeys_{uuid.uuid4().hex[:8]}")
    apply_migrations(migrated)
    return migrated


@pytest.fixture
def fresh_store(chdb_dir: Path, unique_name: str) -> Iterator[EmbeddedStore]:
    """A migrated database of this test's own, dropped afterwards."""
    isolated = open_embedded(chdb_dir, unique_name)
    apply_migrations(isolated)
    yield isolated
    isolated.drop_database()


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseProcess]:
    """The session's ClickHouse HTTP endpoint: its own process owns its chdb directory.

    It must start (a server that does not answer fails the tests) and stop cleanly.
    """
    server = ClickHouseProcess(tmp_path_factory.mktemp("clickhouse_http"))
    server.start()
    yield server
    code = server.stop()
    assert code == 0, f"the ClickHouse test server exited with {code}:\n{server.tail()}"


@pytest.fixture(scope="session")
def clickhouse_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseProcess]:
    """A second test server, the one node of the cluster CLUSTER (a one-shard remote_servers,
    tests/support/clickhouse_cluster.py): for `journeys migrate --cluster` and what the
    cluster layout changes (Distributed tables that take no mutation)."""
    server = ClickHouseProcess(tmp_path_factory.mktemp("clickhouse_cluster"), cluster=CLUSTER)
    server.start()
    yield server
    code = server.stop()
    assert code == 0, f"the ClickHouse cluster test server exited with {code}:\n{server.tail()}"


@pytest.fixture
def cluster_store(clickhouse_cluster: ClickHouseProcess, unique_name: str) -> Iterator[ServerStore]:
    """A database of this test's own on the one-node cluster, laid out as `journeys migrate
    --cluster` lays one out (public names Distributed over `*_local` tables)."""
    store = ServerStore(clickhouse_cluster.url, clickhouse_cluster.user,
                        clickhouse_cluster.password, unique_name)  # fmt: skip
    lay_out(store)
    yield store
    store.execute(f"DROP DATABASE IF EXISTS `{unique_name}`")
    store.close()


@pytest.fixture
def server_store(clickhouse_server: ClickHouseProcess, unique_name: str) -> Iterator[ServerStore]:
    """A migrated database of this test's own on the server path, dropped afterwards."""
    isolated = ServerStore(
        clickhouse_server.url, clickhouse_server.user, clickhouse_server.password, unique_name
    )
    apply_migrations(isolated)
    yield isolated
    isolated.execute(f"DROP DATABASE IF EXISTS `{unique_name}`")
    isolated.close()


@pytest.fixture(scope="session")
def simulated_month() -> SimulatedMonth:
    """A simulated company's month as the worker stores it, cut at the time it was built:
    the dashboard tests read it, so it is built once a session (800 customers, about 13,000
    rows through the validator and the journey engine). Read it, never change it.
    """
    return simulate_month()
