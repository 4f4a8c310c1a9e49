"""The one store interface both ClickHouse backends implement.

Everything above this line (migrations, the sink, dashboards tests, the report) speaks only
`Store`, so the embedded engine (chdb) and a ClickHouse server run the same DDL and queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

Row = Mapping[str, Any]


class StoreError(RuntimeError):
    """A statement failed in ClickHouse; the message carries the server's reason."""


class TransientStoreError(StoreError):
    """A failure worth retrying (connection, timeout, overload): the data was not written."""


# ClickHouse errors that a later attempt of the same statement can pass: the server (or the
# embedded engine) is short of memory, disk or merges, or a replica is briefly read-only.
# Anything else (an unknown column, a type mismatch, a syntax error) fails again every time.
TRANSIENT_ERRORS = (
    "MEMORY_LIMIT_EXCEEDED", "CANNOT_ALLOCATE_MEMORY", "TOO_MANY_PARTS", "NOT_ENOUGH_SPACE",
    "No space left on device", "CANNOT_WRITE_TO_FILE_DESCRIPTOR", "CANNOT_FSYNC",
    "TIMEOUT_EXCEEDED", "SOCKET_TIMEOUT", "NETWORK_ERROR", "ALL_CONNECTION_TRIES_FAILED",
    "TOO_MANY_SIMULTANEOUS_QUERIES", "TABLE_IS_READ_ONLY", "KEEPER_EXCEPTION",
    "QUERY_WAS_CANCELLED",
)  # fmt: skip


def classify_error(message: str) -> type[StoreError]:
    """The error class for a ClickHouse failure's text: transient (retry) or permanent.

    ClickHouse ends its messages with the code's name in parentheses; matching the name
    with them keeps TOO_MANY_PARTITIONS (a batch's shape, permanent) apart from
    TOO_MANY_PARTS (merges behind, transient).
    """
    if any(
        f"({name})" in message or (" " in name and name in message) for name in TRANSIENT_ERRORS
    ):
        return TransientStoreError
    return StoreError


class Store(Protocol):
    database: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement (DDL or DML) that returns nothing."""

    def insert(
        self, table: str, rows: Sequence[Row] | bytes, dedup_token: str | None = None
    ) -> None:
        """Insert rows (dicts, or ready JSONEachRow bytes: one object a line, or one JSON
        array of them, `json_array_rows`) into `table` of the database.

        `dedup_token` makes a retried insert of the same batch a no-op in ClickHouse
        (`insert_deduplication_token`), which is how at-least-once delivery stays exact.
        """

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT; `{name:Type}` placeholders are bound server-side from `params`."""

    def query_bytes(self, sql: str, params: Mapping[str, Any] | None = None) -> bytes:
        """Run a SELECT and return its rows as ClickHouse's JSONCompactEachRow bytes (one
        JSON array a line, no names): for bulk readers that parse rows elsewhere (the
        rescore hands them to its worker processes)."""

    def close(self) -> None: ...


def json_each_row(rows: Iterable[Row]) -> bytes:
    """Rows as ClickHouse JSONEachRow; datetimes become ISO strings ClickHouse parses."""
    return b"".join(orjson.dumps(row, option=orjson.OPT_UTC_Z) + b"\n" for row in rows)


def json_array_rows(rows: Sequence[Row]) -> bytes:
    """Rows as one JSON array of objects, which ClickHouse's JSONEachRow input reads as it
    reads one object a line (the same rows stored: tests/integration/test_store.py), in
    one `orjson.dumps` call instead of one per row: a checkpoint's 30,000 rows encoded in
    about two thirds of the time. Empty (no insert) for no rows."""
    return orjson.dumps(rows, option=orjson.OPT_UTC_Z) if rows else b""


def split_statements(sql: str) -> list[str]:
    """Split a migration file on `;` at line ends; `--` comment lines are dropped."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]
