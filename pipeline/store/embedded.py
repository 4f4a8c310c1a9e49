"""The embedded backend: the ClickHouse engine in-process (chdb), data in a directory.

chdb allows one data directory per process and one process per directory, so the engine is
opened once per process (`_Engine`) and every `EmbeddedStore` shares it, each bound to its
own database. In embedded mode the worker owns the directory; other commands run while it
is stopped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from pipeline.store.base import Row, StoreError, classify_error, json_each_row


class _Engine:
    def __init__(self, path: Path):
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.session = session.Session(str(path))
        except RuntimeError as exc:
            # chdb says only "Error initializing EmbeddedServer" when another process has
            # the directory, which in embedded mode is the running worker.
            raise StoreError(
                f"chdb cannot open its data directory {path} ({exc}); one process at a time "
                "can, and while the worker (`journeys run`) runs it is that process: stop the "
                "worker first, or use a ClickHouse server (JOURNEYS_CLICKHOUSE_MODE=server)"
            ) from None
        # A chdb session is not safe for concurrent use, and `USE` is session-wide: the
        # worker's sink and a query in another thread must take turns.
        self.lock = threading.Lock()
        self.current_database = ""
        self.users = 0

    def close(self) -> None:
        """Shut the engine down, after any statement still running in another thread.

        Left to the interpreter's exit, chdb's teardown races its own background
        schedule pool (`BgSchPool`: merges, refreshable views) and crashes with SIGSEGV;
        closing the session first stops those threads while the process is whole.
        """
        with self.lock:
            self.session.close()


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
        _ENGINE.users += 1
        return _ENGINE


def _release(engine: _Engine) -> None:
    """One store less on the engine; the last one closes it (a later store opens anew)."""
    global _ENGINE
    with _ENGINE_LOCK:
        engine.users -= 1
        if engine.users > 0 or _ENGINE is not engine:
            return
        _ENGINE = None
    engine.close()


class EmbeddedStore:
    def __init__(self, path: Path, database: str):
        self.path = path.resolve()
        self.database = database
        self._engine = _engine(self.path)
        self._closed = False
        self._run(f"CREATE DATABASE IF NOT EXISTS `{database}`", use=False)

    def _run(
        self,
        sql: str,
        fmt: str = "CSV",
        params: Mapping[str, Any] | None = None,
        use: bool = True,
    ) -> Any:
        engine = self._engine
        if self._closed:
            raise StoreError(f"the store of database {self.database} is closed")
        with engine.lock:
            try:
                if use and engine.current_database != self.database:
                    engine.session.query(f"USE `{self.database}`")
                    engine.current_database = self.database
                return engine.session.query(sql, fmt, params=_escaped(params) if params else None)
            except Exception as exc:  # chdb raises its own RuntimeError subclasses
                raise classify_error(str(exc))(f"{exc} [statement: {sql[:300]}]") from exc

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
        result = self._run(sql, "JSONCompactEachRowWithNamesAndTypes", params)
        data = result.bytes() if hasattr(result, "bytes") else bytes(result)
        lines = data.splitlines()
        if not lines:
            return []
        names, types = orjson.loads(lines[0]), orjson.loads(lines[1])
        converters = [python_value(t) for t in types]
        return [
            {
                name: convert(value)
                for name, convert, value in zip(names, converters, row, strict=True)
            }
            for row in map(orjson.loads, lines[2:])
        ]

    def query_bytes(self, sql: str, params: Mapping[str, Any] | None = None) -> bytes:
        result = self._run(sql, "JSONCompactEachRow", params)
        return result.bytes() if hasattr(result, "bytes") else bytes(result)

    def drop_database(self) -> None:
        self._run(f"DROP DATABASE IF EXISTS `{self.database}`", use=False)
        if self._engine.current_database == self.database:
            self._engine.current_database = ""

    def close(self) -> None:
        """Release the engine; the process's last open store shuts it down. Idempotent."""
        if not self._closed:
            self._closed = True
            _release(self._engine)


def python_value(clickhouse_type: str) -> Callable[[Any], Any]:
    """A converter giving the Python value clickhouse-connect would give for this type,
    so callers see the same rows from both backends (datetimes aware, integers as int)."""
    inner = clickhouse_type
    for wrapper in ("LowCardinality(", "Nullable("):
        if inner.startswith(wrapper):
            inner = inner[len(wrapper) : -1]
    if inner.startswith("DateTime"):
        zone = re.search(r"'([^']+)'", inner)
        tz = ZoneInfo(zone.group(1)) if zone and zone.group(1) != "UTC" else UTC
        return _nullable(lambda value: datetime.fromisoformat(value).replace(tzinfo=tz))
    if inner == "Date" or inner == "Date32":
        return _nullable(date.fromisoformat)
    if inner.startswith(("Int", "UInt")):
        return _nullable(int)
    return _identity


def _identity(value: Any) -> Any:
    return value


def _nullable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _escaped(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as chdb parses them: in ClickHouse's escaped (TSV) form, as the server's
    HTTP interface does, so a backslash, tab or newline in a value binds as itself."""
    return {k: v.translate(_ESCAPES) if isinstance(v, str) else v for k, v in params.items()}


def open_embedded(path: Path, database: str) -> EmbeddedStore:
    return EmbeddedStore(path, database)
