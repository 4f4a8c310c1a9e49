"""Migration text handling that needs no ClickHouse: splitting and JSONEachRow encoding."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pipeline.store.base import json_each_row, split_statements


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
