"""Issue 22 on chdb alone: the erasure function on a seeded month, against a month that never
had the customers; and the retention TTLs as ClickHouse applies them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.journey import load_score_model
from pipeline.kafka.local import free_port
from pipeline.report.data import ReportFilter
from pipeline.report.queries import load_report
from pipeline.simulate import SimulationConfig, simulate
from pipeline.store import Store, apply_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded
from pipeline.store.erase import Eraser, load_ledger, refresh_views
from pipeline.store.retention import apply_retention
from pipeline.stream.offline import offline_rows, write_rows
from tests.support.erasure import CUSTOMER_TABLES, TOTALS
from tests.support.worker_process import dump, journeys

pytestmark = pytest.mark.integration
SALT = "test-salt-0123456789abcdef"


@pytest.fixture
def two_stores(chdb_dir: Path) -> Iterator[tuple[EmbeddedStore, EmbeddedStore]]:
    stores = [open_embedded(chdb_dir, f"erase_{uuid.uuid4().hex[:8]}") for _ in range(2)]
    for store in stores:
        apply_migrations(store)
    yield stores[0], stores[1]
    for store in stores:
        store.drop_database()


def totals(store: Store) -> dict[str, object]:
    return {name: store.query(sql) for name, sql in TOTALS.items()}


def test_erasing_leaves_what_a_month_without_them_holds(
    two_stores: tuple[EmbeddedStore, EmbeddedStore],
) -> None:
    check_erasure(*two_stores)


def test_erasing_on_the_server_path(server_store: Store, chdb_dir: Path) -> None:
    """The same erasure through clickhouse-connect (server mode); the reference on chdb."""
    reference = open_embedded(chdb_dir, f"erase_{uuid.uuid4().hex[:8]}")
    apply_migrations(reference)
    try:
        check_erasure(server_store, reference)
    finally:
        reference.drop_database()


def check_erasure(erasing: Store, reference: Store) -> None:
    config = SimulationConfig(customers=120, seed=22, start=datetime(2026, 3, 1, tzinfo=UTC))
    deliveries = simulate(config)[0]
    model = load_score_model()
    write_rows(erasing, offline_rows(((d.value, config.end) for d in deliveries), config.end,
                                     model))  # fmt: skip
    top = erasing.query("SELECT customer_id, count() AS n FROM touchpoints GROUP BY customer_id "
                        "ORDER BY n DESC, customer_id LIMIT 3")  # fmt: skip
    erased = [str(r["customer_id"]) for r in top]
    kept = [d for d in deliveries if not any(f'"{c}"'.encode() in d.value for c in erased)]
    write_rows(reference, offline_rows(((d.value, config.end) for d in kept), config.end,
                                       model))  # fmt: skip
    for store in (erasing, reference):  # the refreshable views' first state, as a worker's
        refresh_views(store)

    eraser = Eraser(erasing)
    outcomes = eraser.erase(erased, SALT, load_ledger(erasing, SALT))
    eraser.record(outcomes, "ticket 22", "r1", "test")
    assert all(o.removed["touchpoints"] > 0 and not o.erased_before for o in outcomes)
    for table in (*CUSTOMER_TABLES, "dead_letters"):
        column = "raw" if table == "dead_letters" else "customer_id"
        for customer in erased:
            left = erasing.query(f"SELECT count() AS n FROM {table} WHERE position({column}, "
                                 "{c:String}) > 0", {"c": customer})  # fmt: skip
            assert left == [{"n": 0}], (table, customer)
    assert totals(erasing) == totals(reference)
    at = datetime(2026, 5, 1, tzinfo=UTC)
    report, expected = (load_report(s, ReportFilter(), now=at) for s in (erasing, reference))
    # Not the loop-closure figures: alerts follow the partition's event-time clock, which
    # the erased customers' events moved too (tests/support/erasure.py); theirs are gone.
    assert replace(report, loop_closure=[]) == replace(expected, loop_closure=[])
    for customer in erased:
        outcomes = erasing.query("SELECT count() AS n FROM alert_outcomes WHERE customer_id = "
                                 "{c:String}", {"c": customer})  # fmt: skip
        assert outcomes == [{"n": 0}], customer
    assert not any(c in str(report) for c in erased)

    again = eraser.erase(erased, SALT, load_ledger(erasing, SALT))
    assert [o.rows_removed for o in again] == [0, 0, 0]
    assert all(o.erased_before for o in again)
    ledger = erasing.query("SELECT customer_hash, rows_removed FROM erasures")
    assert len(ledger) == 3 and not any(c in json.dumps(ledger) for c in erased)
    assert load_ledger(erasing, SALT).is_erased(erased[0])


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
