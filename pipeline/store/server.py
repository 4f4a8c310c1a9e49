"""The server backend: a ClickHouse server or cluster through clickhouse-connect."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.store.base import Row, StoreError, TransientStoreError, classify_error, json_each_row

# A server takes each bound parameter in one URL or form field of at most 128 KiB
# (http_max_field_value_size) and refuses the whole statement beyond, while the embedded
# engine binds any size: a flush moving thousands of touchpoints, or reconciling thousands
# of journeys, binds more. A String that long is written into the statement as a literal
# instead (a third of the limit: URL encoding can triple it), the statement's parse limit
# (max_query_size, 256 KiB) raised to fit.
_FIELD_BYTES = 40 << 10
_STRING_PLACEHOLDER = re.compile(r"\{(\w+)\s*:\s*String\s*\}")


class ServerStore:
    def __init__(self, url: str, user: str, password: str, database: str):
        import clickhouse_connect

        self.database = database
        options: dict[str, Any] = {
            "dsn": url, "username": user, "password": password,
            # Rows as the embedded store gives them: DateTime columns as aware datetimes.
            # The default (naive_utc) drops UTC's zone, and a naive time read back fails
            # every comparison with the aware times the pipeline computes.
            "tz_mode": "aware",
            # No session: a session admits one request at a time, and the worker calls its
            # store from several threads at once (the sink's flush, health samples, the
            # reconciliation), which then failed as concurrent queries in one session. The
            # store keeps no session state (no SET, no temporary tables) to lose.
            "autogenerate_session_id": False,
        }  # fmt: skip
        try:
            bootstrap = clickhouse_connect.get_client(**options)
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            bootstrap.close()
            self._client = clickhouse_connect.get_client(**options, database=database)
        except Exception as exc:
            raise _classify(exc) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        sql, bound, settings = _bind(sql, params)
        try:
            self._client.command(sql, parameters=bound, settings=settings)
        except Exception as exc:
            raise _classify(exc) from exc

    def insert(
        self, table: str, rows: Sequence[Row] | bytes, dedup_token: str | None = None
    ) -> None:
        body = rows if isinstance(rows, bytes) else json_each_row(rows)
        if not body:
            return
        # JSONEachRow carries ISO-8601 times ("...T10:00:00.123Z"); a server's default
        # `basic` parser rejects them (chdb already defaults to best_effort).
        settings: dict[str, Any] = {"date_time_input_format": "best_effort"}
        if dedup_token:
            settings["insert_deduplication_token"] = dedup_token
        try:
            self._client.raw_insert(table, insert_block=body, settings=settings, fmt="JSONEachRow")
        except Exception as exc:
            raise _classify(exc) from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        sql, bound, settings = _bind(sql, params)
        try:
            result = self._client.query(sql, parameters=bound, settings=settings)
        except Exception as exc:
            raise _classify(exc) from exc
        return list(result.named_results())

    def query_bytes(self, sql: str, params: Mapping[str, Any] | None = None) -> bytes:
        sql, bound, settings = _bind(sql, params)
        try:
            return bytes(
                self._client.raw_query(
                    sql, parameters=bound, settings=settings, fmt="JSONCompactEachRow"
                )
            )
        except Exception as exc:
            raise _classify(exc) from exc

    def close(self) -> None:
        self._client.close()


def _bind(
    sql: str, params: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """The statement, the parameters to bind server-side and the settings it needs: long
    String parameters inlined as literals (see _FIELD_BYTES), the rest left to bind."""
    if not params:
        return sql, None, None
    long = {name for name, value in params.items()
            if isinstance(value, str) and len(value.encode()) > _FIELD_BYTES}  # fmt: skip
    if not long:
        return sql, dict(params), None
    inlined: set[str] = set()

    def literal(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in long:
            return match.group(0)
        inlined.add(name)
        return "'" + params[name].replace("\\", "\\\\").replace("'", "\\'") + "'"

    sql = _STRING_PLACEHOLDER.sub(literal, sql)
    bound = {name: value for name, value in params.items() if name not in inlined}
    return sql, bound or None, {"max_query_size": max(len(sql.encode()) + 4096, 262_144)}


def _classify(exc: Exception) -> StoreError:
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return TransientStoreError(str(exc))
    return classify_error(str(exc))(str(exc))
