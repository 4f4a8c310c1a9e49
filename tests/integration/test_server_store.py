"""The server backend (ServerStore over clickhouse-connect) on the real engine.

The endpoint is tests/support/clickhouse_http.py: ClickHouse's HTTP interface in front of
chdb. Where both backends can answer, the server path must answer as the embedded one does
(rows, Python types, error classes), since everything above the store speaks only `Store`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.store import (
    Store,
    StoreError,
    TransientStoreError,
    apply_migrations,
    json_array_rows,
    json_each_row,
    load_migrations,
)
from pipeline.store.embedded import EmbeddedStore
from pipeline.store.migrations import Migration
from pipeline.store.server import ServerStore
from pipeline.stream.sink import move_touchpoints
from tests.support.clickhouse_process import ClickHouseProcess

pytestmark = pytest.mark.integration
AT = datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)
PROVENANCE = {"_topic": "touchpoints", "_partition": 2, "_ingested_at": "2026-03-01T09:30:01Z"}


def touchpoint(event_id: str, offset: int, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "occurred_at": AT, "customer_id": "c-1", "journey_id": "order-1",
        "department": "billing", "stage": "billing", "channel": "email",
        "type": "invoice_issued", "attributes": '{"amount": 120.5, "note": "größer ✓"}',
        "_offset": offset, **PROVENANCE, **changes,
    }  # fmt: skip


def journey(journey_id: str, survey: float | None) -> dict[str, Any]:
    return {
        "journey_id": journey_id, "customer_id": "c-1", "started_at": AT, "last_event_at": AT,
        "updated_at": AT, "status": "open", "score": 71.5, "operational_score": 68.0,
        "survey_score": survey, "band": "fair", "touchpoint_count": 3, "lost_points": 32.0,
        "gained_points": 0.0, "lost_points_beyond_front_desk": 15.0,
        "worst_department": "maintenance", "worst_stage": "service", "score_model": "v1",
        "version": 2**63 + 5, "_offset": 7, **PROVENANCE,
    }  # fmt: skip


def signal(signal_id: str, evidence: list[str]) -> dict[str, Any]:
    return {
        "signal_id": signal_id, "journey_id": "order-1", "customer_id": "c-1",
        "signal": "promise_broken", "department": "maintenance", "stage": "service",
        "impact": -15.0, "effective_at": AT, "evidence_event_ids": evidence,
        "reason": "visit 'P1' due 2026-03-01", "score_model": "v1", "version": 3,
        "_offset": 8, **PROVENANCE,
    }  # fmt: skip


def fill(store: ServerStore | EmbeddedStore) -> None:
    """The same rows into either backend, as dicts and as ready JSONEachRow bytes (one
    object a line, and one JSON array as the sink sends them)."""
    store.insert("touchpoints", [touchpoint("e-1", 10), touchpoint("e-2", 11, channel="")])
    store.insert("touchpoints", json_each_row([touchpoint("e-3", 12, customer_id="c-2")]))
    store.insert("touchpoints", json_array_rows([touchpoint("e-4", 13, channel="app")]))
    store.insert("journeys", [journey("order-1", None), journey("order-2", 87.25)])
    store.insert("journey_signals", [signal("s-1", ["e-1", "e-2"]), signal("s-2", [])])


READS = {
    "touchpoints": "SELECT event_id, occurred_at, customer_id, channel, type, attributes,"
    " _partition, _offset, _ingested_at FROM touchpoints FINAL"
    " WHERE occurred_at >= {since:DateTime64(3, 'UTC')} ORDER BY event_id",
    "journeys": "SELECT journey_id, started_at, score, survey_score, touchpoint_count, version,"
    " is_deleted FROM journeys FINAL WHERE customer_id = {customer:String} ORDER BY journey_id",
    "signals": "SELECT signal_id, impact, evidence_event_ids, reason, active, effective_at"
    " FROM journey_signals FINAL ORDER BY signal_id",
    "aggregate": "SELECT department, stage, sum(impact) AS lost, count() AS n, max(effective_at)"
    " AS last, toDate(max(effective_at)) AS day FROM journey_signals GROUP BY department, stage",
}


def test_rows_read_back_as_the_embedded_store_reads_them(
    server_store: ServerStore, fresh_store: EmbeddedStore
) -> None:
    fill(server_store)
    fill(fresh_store)
    params = {"since": "2026-03-01 00:00:00.000", "customer": "c-1"}  # as the report binds
    for name, sql in READS.items():
        served, embedded = server_store.query(sql, params), fresh_store.query(sql, params)
        assert served == embedded, name
    touchpoints = server_store.query(READS["touchpoints"], params)
    assert [t["event_id"] for t in touchpoints] == ["e-1", "e-2", "e-3", "e-4"]
    assert touchpoints[0]["occurred_at"] == AT  # aware UTC, milliseconds kept
    assert touchpoints[0]["attributes"] == '{"amount": 120.5, "note": "größer ✓"}'
    journeys = server_store.query(READS["journeys"], params)
    assert [(j["survey_score"], j["version"]) for j in journeys] == [
        (None, 2**63 + 5), (87.25, 2**63 + 5),
    ]  # fmt: skip
    signals = server_store.query(READS["signals"], params)
    assert signals[0]["evidence_event_ids"] == ["e-1", "e-2"] and signals[1]["active"] == 1


def test_a_retried_batch_is_dropped_by_its_token_and_only_by_it(server_store: ServerStore) -> None:
    first = [touchpoint("e-1", 10), touchpoint("e-2", 11)]
    other = [touchpoint("e-8", 18), touchpoint("e-9", 19)]
    server_store.insert("touchpoints", first, dedup_token="touchpoints-2-10-11")
    server_store.insert("touchpoints", first, dedup_token="touchpoints-2-10-11")  # a retry
    # The token decides, not the content: the server saw the token the store was given.
    server_store.insert("touchpoints", other, dedup_token="touchpoints-2-10-11")
    server_store.insert("touchpoints", first, dedup_token="touchpoints-2-10-11#replayed")
    rows = server_store.query("SELECT event_id FROM touchpoints ORDER BY event_id, _offset")
    assert [r["event_id"] for r in rows] == ["e-1", "e-1", "e-2", "e-2"]


def test_query_parameters_cannot_change_the_query(server_store: ServerStore) -> None:
    server_store.insert("touchpoints", [touchpoint("e-1", 1)])
    count = "SELECT count() AS n FROM touchpoints WHERE customer_id = {c:String}"
    assert server_store.query(count, {"c": "c-1' OR 1=1 --"}) == [{"n": 0}]
    assert server_store.query(count, {"c": "c-1"}) == [{"n": 1}]


def test_parameters_larger_than_a_server_takes_in_a_field_still_bind(
    server_store: ServerStore, fresh_store: EmbeddedStore
) -> None:
    # A server takes a bound parameter of at most 128 KiB (one URL or form field), the
    # embedded engine any size. A backfill's flush moves tens of thousands of touchpoints
    # to the journeys late events revealed, and their ids travel as parameters.
    rows = [touchpoint(f"e-{n}", n, journey_id="c-1") for n in range(3)]
    server_store.insert("touchpoints", rows)
    moved = {f"e-{n:06d}-{'x' * 20}": ("c-1", "order-1") for n in range(40_000)}
    moved |= {f"e-{n}": ("c-1", "order-1") for n in range(3)}
    assert len(orjson.dumps(list(moved))) > 1 << 20  # beyond a server's whole URL, too
    move_touchpoints(server_store, moved)
    expected = [{"event_id": f"e-{n}", "journey_id": "order-1"} for n in range(3)]
    read = "SELECT event_id, journey_id FROM touchpoints ORDER BY event_id"
    deadline = time.monotonic() + 30  # the delete of the old rows is applied in the background
    while (stored := server_store.query(read)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored == expected
    # Bound as written, whatever it holds; small parameters beside it still bind.
    sql = "SELECT {v:String} = {w:String} AS same, length({v:String}) AS n, {c:String} AS c"
    value = "it's ✓, \x1e-separated" * 20_000
    params = {"v": value, "w": value, "c": "c'1"}
    assert server_store.query(sql, params) == fresh_store.query(sql, params)
    assert server_store.query(sql, params) == [{"same": 1, "n": len(value.encode()), "c": "c'1"}]
    # The embedded store cannot bind a backslash or a tab (chdb reads parameters escaped).
    value = "a \\ backslash, a \\t that is no tab, a\ttab" * 20_000
    params = {"v": value, "w": value, "c": "\\"}
    assert server_store.query(sql, params) == [{"same": 1, "n": len(value), "c": "\\"}]


ERRORS = [
    # A shape no retry can fix: permanent.
    ("SELECT no_such_column FROM touchpoints", StoreError, "UNKNOWN_IDENTIFIER"),
    ("SELECT * FROM no_such_table", StoreError, "UNKNOWN_TABLE"),
    ("SELEKT 1", StoreError, "SYNTAX_ERROR"),
    ("SELECT toUInt8('x')", StoreError, "CANNOT_PARSE_TEXT"),
    # The engine short of a resource: a later attempt can pass.
    ("SELECT count() FROM (SELECT number % 100000 AS k, count() FROM numbers(1000000)"
     " GROUP BY k) SETTINGS max_memory_usage = 100000", TransientStoreError,
     "MEMORY_LIMIT_EXCEEDED"),
    ("SELECT count() FROM numbers(100000000000) SETTINGS max_execution_time = 0.2,"
     " timeout_overflow_mode = 'throw'", TransientStoreError, "TIMEOUT_EXCEEDED"),
]  # fmt: skip


@pytest.fixture(scope="module")
def shared_server_store(clickhouse_server: ClickHouseProcess) -> Iterator[ServerStore]:
    """A migrated database for tests that write nothing that stays."""
    database = f"journeys_{uuid.uuid4().hex[:8]}"
    made = ServerStore(
        clickhouse_server.url, clickhouse_server.user, clickhouse_server.password, database
    )
    apply_migrations(made)
    yield made
    made.execute(f"DROP DATABASE `{database}`")
    made.close()


@pytest.mark.parametrize(("sql", "kind", "name"), ERRORS, ids=[e[2] for e in ERRORS])
def test_errors_are_sorted_as_the_embedded_store_sorts_them(
    shared_server_store: ServerStore, store: Store, sql: str, kind: type, name: str
) -> None:
    for backend in (shared_server_store, store):
        with pytest.raises(StoreError) as raised:
            backend.query(sql)
        assert type(raised.value) is kind and f"({name})" in str(raised.value), raised.value


def test_a_row_the_table_refuses_is_a_permanent_error(shared_server_store: ServerStore) -> None:
    with pytest.raises(StoreError) as raised:
        shared_server_store.insert("touchpoints", [touchpoint("e-1", 1, _offset="not a number")])
    assert type(raised.value) is StoreError and "_offset" in str(raised.value), raised.value


def test_wrong_credentials_are_a_permanent_error(clickhouse_server: ClickHouseProcess) -> None:
    with pytest.raises(StoreError) as raised:
        ServerStore(clickhouse_server.url, clickhouse_server.user, "wrong", "journeys")
    assert type(raised.value) is StoreError and "AUTHENTICATION_FAILED" in str(raised.value)


def test_a_server_that_goes_away_is_a_transient_error_and_its_return_heals(
    tmp_path: Path,
) -> None:
    server = ClickHouseProcess(tmp_path)
    server.start()
    try:
        store = ServerStore(server.url, server.user, server.password, "journeys")
        apply_migrations(store)
        store.insert("touchpoints", [touchpoint("e-1", 1)])
        assert server.stop() == 0
        with pytest.raises(TransientStoreError):
            store.insert("touchpoints", [touchpoint("e-2", 2)])
        server.start()  # the same port and data
        store.insert("touchpoints", [touchpoint("e-2", 2)])
        assert store.query("SELECT count() AS n FROM touchpoints") == [{"n": 2}]
        store.close()
    finally:
        assert server.stop() == 0, server.tail()


def test_a_store_that_is_unreachable_from_the_start_is_a_transient_error(
    tmp_path: Path,
) -> None:
    from pipeline.kafka.local import free_port

    with pytest.raises(TransientStoreError):
        ServerStore(f"http://127.0.0.1:{free_port()}", "default", "", "journeys")


def test_threads_can_share_one_store(server_store: ServerStore) -> None:
    # The worker calls its store from threads at once: the sink's flush, the health sample
    # and the reconciliation each run in asyncio.to_thread.
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                server_store.insert("touchpoints", [touchpoint(f"e-{n}-{i}", n * 100 + i)])
                server_store.query("SELECT count() AS n FROM touchpoints FINAL")
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:2]
    assert server_store.query("SELECT count() AS n FROM touchpoints") == [{"n": 60}]


# --- migrations ---------------------------------------------------------------------------
TABLES = "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String}"


def test_migrations_build_the_embedded_schema_once_and_a_second_run_changes_nothing(
    clickhouse_server: ClickHouseProcess, fresh_store: EmbeddedStore, unique_name: str
) -> None:
    database = f"{unique_name}_m"
    store = ServerStore(
        clickhouse_server.url, clickhouse_server.user, clickhouse_server.password, database
    )
    try:
        applied = apply_migrations(store)
        assert [m.version for m in applied] == [m.version for m in load_migrations()]
        tables = store.query(TABLES + " ORDER BY name", {"db": database})
        assert apply_migrations(store) == []
        assert store.query(TABLES + " ORDER BY name", {"db": database}) == tables
        ledger = store.query("SELECT version, checksum FROM schema_migrations FINAL ORDER BY 1")
        assert ledger == [{"version": m.version, "checksum": m.checksum} for m in applied]
        embedded = fresh_store.query(TABLES + " ORDER BY name", {"db": fresh_store.database})
        assert [
            {**t, "create_table_query": t["create_table_query"].replace(database, "DB")}
            for t in tables
        ] == [
            {**t, "create_table_query": t["create_table_query"].replace(fresh_store.database, "DB")}
            for t in embedded
        ]  # fmt: skip
    finally:
        store.execute(f"DROP DATABASE IF EXISTS `{database}`")
        store.close()


def test_an_edited_migration_is_refused(server_store: ServerStore) -> None:
    original = Migration(99, "demo", "CREATE TABLE IF NOT EXISTS demo (x UInt8) ENGINE = Memory;")
    assert apply_migrations(server_store, [original]) == [original]
    edited = Migration(99, "demo", "CREATE TABLE IF NOT EXISTS demo (x UInt16) ENGINE = Memory;")
    with pytest.raises(StoreError, match="edited after it was applied"):
        apply_migrations(server_store, [edited])
