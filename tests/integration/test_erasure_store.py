"""Issue 22 on chdb alone: the erasure function on a seeded month, against a month that never
had the customers; and the retention TTLs as ClickHouse applies them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.kafka.local import free_port
from pipeline.store import Store
from pipeline.store.embedded import EmbeddedStore
from pipeline.store.retention import apply_retention
from tests.support.erasure import check_erasure, check_erasure_against_chdb, erasure_database
from tests.support.worker_process import dump, journeys

pytestmark = pytest.mark.integration
SALT = "test-salt-0123456789abcdef"


@pytest.fixture
def two_stores(chdb_dir: Path) -> Iterator[tuple[EmbeddedStore, EmbeddedStore]]:
    stores = [erasure_database(chdb_dir) for _ in range(2)]
    yield stores[0], stores[1]
    for store in stores:
        store.drop_database()


def test_erasing_leaves_what_a_month_without_them_holds(
    two_stores: tuple[EmbeddedStore, EmbeddedStore],
) -> None:
    check_erasure(*two_stores)


def test_erasing_on_the_server_path(server_store: Store, chdb_dir: Path) -> None:
    """The same erasure through clickhouse-connect (server mode); the reference on chdb."""
    check_erasure_against_chdb(server_store, chdb_dir)


def test_retention_ttls_are_set_once_and_removed_with_zero(
    two_stores: tuple[EmbeddedStore, EmbeddedStore],
) -> None:
    store = two_stores[0]
    assert len(apply_retention(store, 30, 400)) == 7
    assert apply_retention(store, 30, 400) == []  # in place: no second MODIFY TTL
    engine = store.query("SELECT engine_full FROM system.tables WHERE "
                         "database = currentDatabase() AND name = 'touchpoints'")  # fmt: skip
    assert "TTL toDateTime(occurred_at) + toIntervalDay(30)" in engine[0]["engine_full"]
    assert len(apply_retention(store, 0, 0)) == 7


SEED = """
from datetime import UTC, datetime
from pipeline.journey import load_score_model
from pipeline.kafka.local import free_port
from pipeline.settings import load_settings
from pipeline.simulate import SimulationConfig, simulate
from pipeline.stream.offline import offline_rows, write_rows
from pipeline.store import apply_migrations, get_store
store = get_store(load_settings())
apply_migrations(store)
config = SimulationConfig(customers=30, seed=22, start=datetime(2026, 3, 1, tzinfo=UTC))
messages = ((d.value, config.end) for d in simulate(config)[0])
write_rows(store, offline_rows(messages, config.end, load_score_model()))
store.close()
"""


def test_the_command_erases_directly_when_no_worker_runs(tmp_path: Path) -> None:
    env = os.environ | {
        "JOURNEYS_DATA_DIR": str(tmp_path), "JOURNEYS_ERASURE_SALT": SALT,
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # nobody there
        "JOURNEYS_KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
    }  # fmt: skip
    subprocess.run([sys.executable, "-c", SEED], env=env, check=True, timeout=300)
    said = journeys("erase", "--customer", "CUST-0000001", "--customer", "nobody",
                    "--reason", "GDPR art. 17", env=env)  # fmt: skip
    assert "does not answer" in said and "CUST-0000001: " in said, said
    assert "rows removed (" in said and "nobody: 0 rows (no data held" in said, said
    again = journeys("erase", "--customer", "CUST-0000001", env=env)
    assert "CUST-0000001: 0 rows (already erased" in again, again
    left = dump(env, {"n": "SELECT count() AS n FROM touchpoints WHERE customer_id = "
                      "'CUST-0000001'", "ledger": "SELECT reason FROM erasures"})  # fmt: skip
    assert left["n"] == [{"n": 0}]
    assert sorted(r["reason"] for r in left["ledger"]) == ["", "GDPR art. 17", "GDPR art. 17"]
