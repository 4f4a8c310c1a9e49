"""The engine behind the test server: one chdb session, one statement at a time.

chdb is ClickHouse's engine in-process (clickhouse-local's build), so statements, types,
formats, MergeTree, deduplication and error codes are the real ones. What differs from a
server is the shell around it: this module gives it a server's defaults where chdb's
differ, runs each request in the database and with the settings the request names, and
turns chdb's exceptions into ClickHouse's error shape (code, name, HTTP status).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.clickhouse_sql import Statement

# chdb ships clickhouse-local's defaults; a server's differ in these (ClickHouse's
# Settings.cpp): inserts are synchronous, text DateTime parsing is `basic` (ISO 8601 with a
# `T` and a zone is refused unless the client asks for best_effort), and a bare expression
# is no query. Requests start from these, so what passes here passes on a server.
SERVER_DEFAULTS = {"async_insert": "0", "date_time_input_format": "basic", "implicit_select": "0"}

_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENGINE_ERROR = re.compile(r"Code: (\d+)\. (DB::Exception: .*)", re.DOTALL)
_ERROR_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")
_VERSION_SUFFIX = re.compile(r"\s*\(version [^)]*\)\s*$")

# exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), by name;
# anything else is 500. The client retries 503 (and 429, 504) for idempotent requests.
_STATUS_BY_NAME = {
    **dict.fromkeys(("REQUIRED_PASSWORD",), 401),
    **dict.fromkeys(("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED",
                     "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"), 403),
    **dict.fromkeys(("BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
                     "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING",
                     "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
                     "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4",
                     "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
                     "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
                     "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN",
                     "TOO_DEEP_AST", "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR",
                     "INCORRECT_DATA", "TYPE_MISMATCH", "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"), 400),
    **dict.fromkeys(("UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE",
                     "UNKNOWN_STORAGE", "UNKNOWN_DATABASE", "UNKNOWN_SETTING",
                     "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION",
                     "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY",
                     "UNKNOWN_ROLE"), 404),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    **dict.fromkeys(("SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"), 503),
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}  # fmt: skip


class ClickHouseError(Exception):
    """An error as ClickHouse reports it: a numeric code, its name and the message."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(message)
        self.code, self.name, self.message = code, name, message

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        text = str(exc)
        match = _ENGINE_ERROR.search(text)
        if match is None:  # not the engine's (a chdb binding error): an unexpected one
            return cls(1001, "STD_EXCEPTION", f"DB::Exception: {text}")
        message = _VERSION_SUFFIX.sub("", match.group(2))
        names = _ERROR_NAME.findall(message)
        return cls(int(match.group(1)), names[-1] if names else "UNKNOWN_EXCEPTION", message)

    @classmethod
    def of(cls, code: int, name: str, text: str) -> ClickHouseError:
        return cls(code, name, f"DB::Exception: {text}. ({name})")

    @property
    def http_status(self) -> int:
        return _STATUS_BY_NAME.get(self.name, 500)

    def body(self, version: str) -> bytes:
        return f"Code: {self.code}. {self.message} (version {version})\n".encode()


@dataclass
class Outcome:
    data: bytes
    summary: dict[str, str] = field(default_factory=dict)


class Engine:
    """One chdb session over `path`; statements take turns (a session is not re-entrant)."""

    def __init__(
        self, path: Path, config: Path | None = None, defaults: dict[str, str] | None = None
    ):
        """`config`: a server config file for the session (a cluster's remote_servers);
        `defaults`: settings a request starts from beyond SERVER_DEFAULTS (a profile's)."""
        from chdb import session

        path.mkdir(parents=True, exist_ok=True)
        self._session = session.Session(str(path) + (f"?config-file={config}" if config else ""))
        self._lock = threading.Lock()
        self._applied: dict[str, str | None] = {}
        self.defaults = SERVER_DEFAULTS | (defaults or {})
        for name, value in self.defaults.items():
            self._set(name, value)
        info = self._session.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = info.decode().strip().split("\t")

    def run(
        self, statement: Statement, database: str, settings: dict[str, str],
        params: dict[str, str], default_format: str,
    ) -> Outcome:  # fmt: skip
        with self._lock:
            try:
                # A real server resolves the request's database before anything runs.
                self._session.query(f"USE {_identifier(database)}")
                self._apply(settings)
                if statement.insert_format is not None:
                    return self._insert(statement)
                return self._query(statement.sql, default_format, params)
            except ClickHouseError:
                raise
            except Exception as exc:  # chdb raises RuntimeError subclasses with the text
                raise ClickHouseError.from_engine(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._session.close()

    def _query(self, sql: str, default_format: str, params: dict[str, str]) -> Outcome:
        result = self._session.query(sql, default_format, params=params or None)
        data = bytes(result.bytes())
        return Outcome(data, {
            "read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
            "written_rows": str(result.rows_written()),
            "written_bytes": str(result.bytes_written()),
            "result_bytes": str(len(data)),
            "elapsed_ns": str(int(result.elapsed() * 1e9)),
        })  # fmt: skip

    def _insert(self, statement: Statement) -> Outcome:
        assert statement.insert_format is not None
        # The engine's own INSERT-with-data path: the bytes are parsed in their format
        # (Native, JSONEachRow, ...) exactly as a server parses a request body.
        with self._session.send_insert(statement.sql, statement.insert_format) as inserter:
            if statement.data:
                inserter.append(statement.data)
            done = inserter.finish()
        return Outcome(b"", {
            "read_rows": "0", "read_bytes": "0",
            "written_rows": str(done.rows_written), "written_bytes": str(done.bytes_written),
            "elapsed_ns": str(int(done.elapsed * 1e9)),
        })  # fmt: skip

    def _apply(self, settings: dict[str, str]) -> None:
        """The request's settings, and a server's defaults for any earlier request's."""
        for name in [n for n in self._applied if n not in settings]:
            self._set(name, self.defaults.get(name))
        for name, value in settings.items():
            if self._applied.get(name, self.defaults.get(name)) != value:
                self._set(name, value)

    def _set(self, name: str, value: str | None) -> None:
        """SET in the session; `_applied` keeps what differs from the defaults (None: the
        engine's own), so a run of requests with the same settings sets nothing."""
        if not _SETTING_NAME.fullmatch(name):
            raise ClickHouseError.of(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
        self._session.query(f"SET {name} = {'DEFAULT' if value is None else _literal(value)}")
        if value == self.defaults.get(name):
            self._applied.pop(name, None)
        else:
            self._applied[name] = value


def _literal(value: Any) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
