"""The server backend: a ClickHouse server or cluster through clickhouse-connect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.store.base import Row, StoreError, TransientStoreError, classify_error, json_each_row


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
        try:
            self._client.command(sql, parameters=dict(params) if params else None)
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
        try:
            result = self._client.query(sql, parameters=dict(params) if params else None)
        except Exception as exc:
            raise _classify(exc) from exc
        return list(result.named_results())

    def close(self) -> None:
        self._client.close()


def _classify(exc: Exception) -> StoreError:
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return TransientStoreError(str(exc))
    return classify_error(str(exc))(str(exc))
