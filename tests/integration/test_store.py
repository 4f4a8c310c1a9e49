"""The store interface on the real ClickHouse engine (chdb): migrations and round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.contract import Rejection, Touchpoint
from pipeline.journey import Assignment, JourneyScore, Signal
from pipeline.store import (
    StoreError,
    apply_migrations,
    json_array_rows,
    json_each_row,
    load_migrations,
)
from pipeline.store.embedded import EmbeddedStore, open_embedded
from pipeline.store.migrations import Migration
from pipeline.stream import rows as worker

TABLES_SQL = (
    "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name"
)
PROVENANCE = {"_topic": "touchpoints", "_partition": 0, "_ingested_at": "2026-03-01T00:00:01Z"}


def touchpoint_row(event_id: str, offset: int) -> dict[str, object]:
    return {
        "event_id": event_id,
        "occurred_at": "2026-03-01T09:30:00.250Z",
        "customer_id": "c-1",
        "journey_id": "order-1",
        "department": "billing",
        "stage": "billing",
        "channel": "email",
        "type": "invoice_issued",
        "attributes": '{"invoice_id": "inv-1", "amount": 120.5}',
        "_offset": offset,
        **PROVENANCE,
    }


def test_migrations_apply_once_and_a_second_run_changes_nothing(
    chdb_dir: Path, unique_name: str
) -> None:
    store = open_embedded(chdb_dir, unique_name)
    try:
        first = apply_migrations(store)
        assert [m.version for m in first] == [m.version for m in load_migrations()]
        tables_before = store.query(
            TABLES_SQL,
            {"db": unique_name},
        )
        assert {"touchpoints", "dead_letters", "journeys", "journey_signals"} <= {
            t["name"] for t in tables_before
        }
        assert apply_migrations(store) == []
        tables_after = store.query(
            TABLES_SQL,
            {"db": unique_name},
        )
        assert tables_after == tables_before
        ledger = store.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
        assert [r["version"] for r in ledger] == [m.version for m in load_migrations()]
    finally:
        store.drop_database()


def test_an_edited_migration_is_refused(chdb_dir: Path, unique_name: str) -> None:
    store = open_embedded(chdb_dir, unique_name)
    try:
        original = Migration(
            1, "demo", "CREATE TABLE IF NOT EXISTS demo (x UInt8) ENGINE = Memory;"
        )
        apply_migrations(store, [original])
        edited = Migration(1, "demo", "CREATE TABLE IF NOT EXISTS demo (x UInt16) ENGINE = Memory;")
        with pytest.raises(StoreError, match="edited after it was applied"):
            apply_migrations(store, [edited])
    finally:
        store.drop_database()


def test_rows_round_trip_and_a_retried_batch_is_written_once(fresh_store: EmbeddedStore) -> None:
    batch = [touchpoint_row("e-1", 10), touchpoint_row("e-2", 11)]
    fresh_store.insert("touchpoints", batch, dedup_token="touchpoints-0-10-11")
    fresh_store.insert("touchpoints", batch, dedup_token="touchpoints-0-10-11")  # a retry
    rows = fresh_store.query(
        "SELECT event_id, occurred_at, department, attributes, _offset FROM touchpoints "
        "WHERE customer_id = {c:String} ORDER BY event_id",
        {"c": "c-1"},
    )
    assert rows == [
        {
            "event_id": "e-1",
            "occurred_at": datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC),
            "department": "billing",
            "attributes": '{"invoice_id": "inv-1", "amount": 120.5}',
            "_offset": 10,
        },
        {
            "event_id": "e-2",
            "occurred_at": datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC),
            "department": "billing",
            "attributes": '{"invoice_id": "inv-1", "amount": 120.5}',
            "_offset": 11,
        },
    ]


def test_query_parameters_cannot_change_the_query(fresh_store: EmbeddedStore) -> None:
    fresh_store.insert("touchpoints", [touchpoint_row("e-1", 1)])
    hostile = "c-1' OR 1=1 --"
    assert fresh_store.query(
        "SELECT count() AS n FROM touchpoints WHERE customer_id = {c:String}", {"c": hostile}
    ) == [{"n": 0}]


def test_store_errors_carry_the_reason(fresh_store: EmbeddedStore) -> None:
    with pytest.raises(StoreError, match="no_such_table"):
        fresh_store.query("SELECT * FROM no_such_table")


def test_the_embedded_engine_refuses_a_second_directory(chdb_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot also open"):
        EmbeddedStore(tmp_path / "other", "journeys")


@pytest.mark.parametrize("value", ["back\\slash", "tab\there", "new\nline", "cr\rnul\0", "\\t"])
def test_a_string_parameter_binds_as_itself(fresh_store: EmbeddedStore, value: str) -> None:
    # chdb reads parameter values in ClickHouse's escaped form: unescaped, a backslash
    # changed the value and a tab or newline was refused (an id in a reconcile query).
    assert fresh_store.query("SELECT {v:String} AS v", {"v": value}) == [{"v": value}]


def worker_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows as the worker builds them, with what JSON encoding can trip on: quotes,
    backslashes, newlines, non-ASCII, a lone surrogate escaped, a time not in UTC, empty
    and null values, arrays, 64-bit versions."""
    ingested = datetime(2026, 3, 1, 9, 30, 1, 125000, tzinfo=UTC)
    paris = timezone(timedelta(hours=2))
    touchpoints = [
        worker.touchpoint_row(
            Touchpoint(event_id=f"e-{n}", customer_id="c-1", department="billing",
                       type="invoice_issued", journey_id=journey, channel=channel,
                       occurred_at=datetime(2026, 3, 1, 11, 30, n, 250000, tzinfo=paris),
                       attributes={"note": 'größer ✓ "quoted" \\ back\nline', "n": n}),
            assignment, worker.Position("touchpoints", 2, 40 + n, ingested),
        )
        for n, (journey, channel, assignment) in enumerate([
            ("order-1", "email", Assignment("e-0", "order-1", "billing")),
            (None, None, None),
            ("order-1", "app", Assignment("e-2", "order-1", "renewal")),
        ])
    ]  # fmt: skip
    signal = Signal("s-1", "order-1", "c-1", "promise_broken", "billing", "billing", -15.0,
                    datetime(2026, 3, 2, 8, 0, tzinfo=UTC), ["e-0", "e-2"],
                    "visit 'P1' due 2026-03-02 \"late\"", "v1")  # fmt: skip
    at = worker.Position("touchpoints", 2, 42, ingested)
    score = JourneyScore("order-1", "c-1", touchpoints[0]["occurred_at"], signal.effective_at,
                         "open", 71.5, 68.0, None, "fair", 3, 32.0, 0.0, 15.0, "billing",
                         "billing", "v1", [signal], signal.effective_at)  # fmt: skip
    rejection = Rejection(code="invalid_json", field="", message="not JSON: 'x\\'")
    raw = "{'x\\\ud800 ✓\n".encode("utf-8", "surrogatepass")
    retracted = msgspec.structs.replace(signal, signal_id="s-2", evidence_event_ids=[])
    return {
        "touchpoints": touchpoints,
        "journeys": [worker.journey_row(score, at)],
        "journey_signals": [
            worker.signal_row(signal, True, 2**62 + 5, at),
            worker.signal_row(retracted, False, 2**62 + 6, at),
        ],
        "dead_letters": [worker.dead_letter_row(raw, rejection, at)],
    }


def test_a_json_array_body_stores_what_json_each_row_stores(
    fresh_store: EmbeddedStore, chdb_dir: Path, unique_name: str
) -> None:
    """The sink sends a table's rows as one JSON array (`json_array_rows`), which ClickHouse
    reads as JSONEachRow input: the rows stored must be those of one object a line, and
    read back as the worker built them."""
    by_line = open_embedded(chdb_dir, f"{unique_name}_lines")
    apply_migrations(by_line)
    try:
        built = worker_rows()
        for table, table_rows in built.items():
            token = f"{table}:touchpoints-2-40-42"
            fresh_store.insert(table, json_array_rows(table_rows), dedup_token=token)
            fresh_store.insert(table, json_array_rows(table_rows), dedup_token=token)  # retry
            by_line.insert(table, json_each_row(table_rows), dedup_token=token)
        for table, table_rows in built.items():
            columns = ", ".join(f"`{c}`" for c in table_rows[0])
            sql = f"SELECT {columns} FROM {table}"
            stored = sorted(fresh_store.query(sql), key=repr)
            assert stored == sorted(by_line.query(sql), key=repr), table
            expected = [{k: list(v) if isinstance(v, list) else v for k, v in row.items()}
                        for row in table_rows]  # fmt: skip
            assert stored == sorted(expected, key=repr), table
    finally:
        by_line.drop_database()
        by_line.close()
    assert json_array_rows([]) == b""  # no rows: no insert (the stores skip an empty body)
