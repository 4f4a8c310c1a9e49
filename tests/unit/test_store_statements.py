"""Migration text handling that needs no ClickHouse: splitting, and the rows' JSON encodings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pipeline.store.base import json_array_rows, json_each_row, split_statements


def test_statements_split_on_semicolons_at_line_end_and_drop_comments() -> None:
    sql = """
-- a comment; with a semicolon
CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory;

-- another
CREATE TABLE b (
    y UInt8
) ENGINE = Memory;
SELECT 1
"""
    assert split_statements(sql) == [
        "CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory",
        "CREATE TABLE b (\n    y UInt8\n) ENGINE = Memory",
        "SELECT 1",
    ]


@given(st.lists(st.text(alphabet="abcdefgh ()=,'", min_size=1, max_size=30), max_size=8))
def test_split_keeps_every_statement(bodies: list[str]) -> None:
    bodies = [b.strip() for b in bodies if b.strip() and not b.strip().startswith("--")]
    sql = "".join(f"{body};\n" for body in bodies)
    assert split_statements(sql) == bodies


def test_json_each_row_writes_utc_times_clickhouse_parses() -> None:
    when = datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)
    body = json_each_row([{"a": 1, "t": when}, {"a": 2, "t": when}])
    lines = body.splitlines()
    assert len(lines) == 2
    assert orjson.loads(lines[0]) == {"a": 1, "t": "2026-03-02T10:00:00.123000Z"}


def test_a_json_array_body_holds_the_rows_of_json_each_row_in_order() -> None:
    """The sink's body (one JSON array, which ClickHouse reads as JSONEachRow input: see
    tests/integration/test_store.py) is the same objects, byte for byte, as the lines."""
    when = datetime(2026, 3, 2, 12, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2)))
    rows = [{"a": 1, "t": when, "s": 'q"\n\\ ✓'}, {"a": 2, "t": None, "s": ["x", "y"]}]
    lines = json_each_row(rows).splitlines()
    assert json_array_rows(rows) == b"[" + b",".join(lines) + b"]"
    assert json_array_rows([]) == b""  # no rows: no body, so no insert
