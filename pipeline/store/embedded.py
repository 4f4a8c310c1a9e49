"""The embedded backend: the ClickHouse engine in-process (chdb), data in a directory.

chdb allows one data directory per process and one process per directory, so the engine is
opened once per process (`_Engine`) and every `EmbeddedStore` shares it, each bound to its
own database. In embedded mode the worker owns the directory; other commands run while it
is stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from pipeline.store.base import Row, StoreError, json_each_row


class _Engine:
    def __init__(self, path: Path):
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.session = session.Session(str(path))
        # A chdb session is not safe for concurrent use, and `USE` is session-wide: the
        # worker's sink and a query in another thread must take turns.
        self.lock = threading.Lock()
        self.current_database = ""


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine(path: Path) -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine(path)
        elif _ENGINE.path != path:
            raise StoreError(
                f"chdb already runs over {_ENGINE.path} in this process; it cannot also open {path}"
            )
        return _ENGINE


class EmbeddedStore:
    def __init__(self, path: Path, database: str):
        self.path = path.resolve()
        self.database = database
        self._engine = _engine(self.path)
        self._run(f"CREATE DATABASE IF NOT EXISTS `{database}`", use=False)

    def _run(
        self,
        sql: str,
        fmt: str = "CSV",
        params: Mapping[str, Any] | None = None,
        use: bool = True,
    ) -> Any:
        engine = self._engine
        with engine.lock:
            try:
                if use and engine.current_database != self.database:
                    engine.session.query(f"USE `{self.database}`")
                    engine.current_database = self.database
                return engine.session.query(sql, fmt, params=dict(params) if params else None)
            except Exception as exc:  # chdb raises its own RuntimeError subclasses
                raise StoreError(f"{exc} [statement: {sql[:300]}]") from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, params=params)

    def insert(
        self, table: str, rows: Sequence[Row] | bytes, dedup_token: str | None = None
    ) -> None:
        body = rows if isinstance(rows, bytes) else json_each_row(rows)
        if not body:
            return
        settings = ""
        if dedup_token is not None:
            token = dedup_token.replace("\\", "\\\\").replace("'", "\\'")
            settings = f" SETTINGS insert_deduplication_token='{token}'"
        sql = f"INSERT INTO `{self.database}`.`{table}`{settings} FORMAT JSONEachRow\n"
        self._run(sql + body.decode())

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self._run(sql, "JSONEachRow", params)
        data = result.bytes() if hasattr(result, "bytes") else bytes(result)
        return [orjson.loads(line) for line in data.splitlines() if line]

    def drop_database(self) -> None:
        self._run(f"DROP DATABASE IF EXISTS `{self.database}`", use=False)
        if self._engine.current_database == self.database:
            self._engine.current_database = ""

    def close(self) -> None:
        # The engine lives as long as the process, so another store can still use it.
        pass


def open_embedded(path: Path, database: str) -> EmbeddedStore:
    return EmbeddedStore(path, database)
