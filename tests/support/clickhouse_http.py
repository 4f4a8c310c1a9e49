"""A ClickHouse HTTP endpoint for tests, in front of the real engine (chdb).

No ClickHouse server of a usable version installs here, so the server path (ServerStore,
clickhouse-connect) runs against this: a process that speaks the part of ClickHouse's HTTP
interface clickhouse-connect uses and hands every statement to one chdb session, which it
owns with its data directory (chdb allows one process per directory). Run it as
`python -m tests.support.clickhouse_http --data DIR --port-file FILE`; the fixtures do
(`ClickHouseProcess`), on a free loopback port.

What it speaks, as ClickHouse does:
- `POST /` and `GET /` with the query in the body, in `?query=` (then the body follows it
  after a newline: an INSERT's data), or in a multipart form with its `param_*` fields;
  `GET /ping` and a bare `GET /` answer `Ok.`.
- `param_<name>` URL parameters bound to `{name:Type}` placeholders by the engine; every
  other URL parameter except the reserved ones (`database`, `default_format`, `query_id`,
  `session_*`, ...) is a setting for that request only, as on a server.
- Any output format the engine writes (clickhouse-connect reads Native) and any input
  format for `INSERT ... FORMAT <name>` data (the engine's streaming insert, so binary
  Native works), with the settings in the INSERT (`insert_deduplication_token`).
- Errors as ClickHouse sends them: the HTTP status of exceptionCodeToHTTPStatus, the
  `X-ClickHouse-Exception-Code` header and `Code: N. DB::Exception: ... (NAME) (version
  V)` in the body; more than one statement or an empty query is SYNTAX_ERROR.
- Users: one user and password (Basic auth, `X-ClickHouse-User`/`-Key` or `user` and
  `password` parameters); anything else is AUTHENTICATION_FAILED (403).
- Sessions as far as a client can tell them apart: a second request in a session that is
  busy gets SESSION_IS_LOCKED, `session_check=1` on an unknown or expired one
  SESSION_NOT_FOUND.
- Compression: request bodies in gzip, deflate, lz4 (frame) or zstd (`Content-Encoding`);
  responses compressed as a server does (zstd first) when `enable_http_compression` is on
  and the client accepts it.
- The headers clickhouse-connect reads: `X-ClickHouse-Query-Id`, `-Format`, `-Timezone`,
  `-Summary` (read, written and result bytes; no `result_rows`).

Limits versus a real server (each one deliberate; a test that needs one must add it):
- One statement at a time: chdb runs one query per session, so requests queue on a lock.
  Concurrency bugs that need two statements to overlap inside the engine do not show.
- Sessions keep no state: `SET` and temporary tables are refused (NOT_IMPLEMENTED), since
  in one chdb session they would leak into every other client. Pass settings per request.
- Responses are buffered, never streamed: `wait_end_of_query` is always in effect, no
  progress headers are sent, and an error can never arrive after a 200 status.
- `client_protocol_version` is ignored, so clickhouse-connect's probe falls back to
  protocol 0 (Native without block info), as it does behind a proxy that strips it.
- No `compress=1`/`decompress=1` (ClickHouse's own block compression), no external data
  (multipart files), no readonly users, quotas, roles, TLS, or HTTP handlers other than
  `/` and `/ping`. GET runs read-only statements only, as on a server.
- One node: no Keeper or replication; engine defaults are clickhouse-local's except those
  in `SERVER_DEFAULTS` (clickhouse_engine.py). With `--cluster NAME` it is the one node of
  the cluster NAME (tests/support/clickhouse_cluster.py): real Distributed tables over it,
  `ON CLUSTER` statements run on it alone.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import gzip
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.clickhouse_cluster import CLUSTER_DEFAULTS, one_node, write_config
from tests.support.clickhouse_engine import ClickHouseError, Engine, Outcome
from tests.support.clickhouse_sql import SqlShapeError, parse_request

# URL parameters ClickHouse's HTTP handler reads itself; everything else is a setting.
RESERVED = {
    "query", "database", "default_format", "user", "password", "quota_key", "query_id",
    "stacktrace", "role", "buffer_size", "wait_end_of_query", "session_id", "session_timeout",
    "session_check", "client_protocol_version", "close_session", "compress", "decompress",
}  # fmt: skip
# A server's limits on a request's fields (URL parameters, form fields), which bound query
# parameters: http_max_uri_size, http_max_field_value_size (on the URL's still-encoded text),
# http_max_field_name_size, http_max_fields. The engine in-process has none of them.
MAX_URI = 1 << 20
MAX_FIELD_VALUE = 128 << 10
MAX_FIELD_NAME = 4096
MAX_FIELDS = 1000
_READ_ONLY = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"}
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


def _zstd() -> Any:
    """zstd (preferred by a server) from the stdlib (3.14) or its backport, if installed."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _codecs() -> dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
    """Content-Encoding name: (compress, decompress), in a server's order of preference."""
    codecs: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {}
    zstd = _zstd()
    if zstd is not None:
        codecs["zstd"] = (zstd.compress, zstd.decompress)
    try:
        import lz4.frame

        codecs["lz4"] = (lz4.frame.compress, lz4.frame.decompress)
    except ImportError:
        pass
    codecs["gzip"] = (gzip.compress, gzip.decompress)
    codecs["deflate"] = (zlib.compress, zlib.decompress)
    return codecs


CODECS = _codecs()


class Sessions:
    """Which sessions exist and which are busy; they hold nothing else (see the limits)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._expires: dict[str, float] = {}

    @contextmanager
    def hold(self, params: dict[str, str]) -> Iterator[None]:
        session = params.get("session_id", "")
        if not session:
            yield
            return
        timeout = float(params.get("session_timeout") or 60)
        with self._lock:
            now = time.monotonic()
            if self._expires.get(session, now) < now:
                del self._expires[session]
            if params.get("session_check") == "1" and session not in self._expires:
                raise ClickHouseError.of(372, "SESSION_NOT_FOUND", f"Session {session} not found")
            if session in self._busy:
                raise ClickHouseError.of(
                    373, "SESSION_IS_LOCKED", f"Session {session} is locked by a concurrent client"
                )
            self._busy.add(session)
            self._expires[session] = now + timeout
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(session)
                self._expires[session] = time.monotonic() + timeout


class Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        self.status, self.body, self.headers = status, body, headers


class ClickHouseHTTP:
    """The request -> response logic, apart from the socket handling."""

    def __init__(self, engine: Engine, user: str, password: str, clustered: bool = False):
        self.engine, self.user, self.password = engine, user, password
        self.clustered = clustered  # the one node of a cluster: see clickhouse_cluster.py
        self.sessions = Sessions()

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[Response, str]:
        """The response, and a short description of the request for the log."""
        url = urlsplit(path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        base = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone,
            "X-ClickHouse-Server-Display-Name": "clickhouse-http-test",
        }
        if url.path == "/ping" or (url.path == "/" and method == "GET" and "query" not in params):
            return Response(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"}), "ping"
        note = [path[:120]]  # the statement, once known: the log's line for this request
        try:
            if url.path != "/":
                raise ClickHouseError.of(
                    1000, "POCO_EXCEPTION", f"There is no handle {url.path}: use / or /ping"
                )
            _check_fields(url.query.split("&") if url.query else [])
            self._authenticate(params, headers)
            body = self._decoded(params, headers, body)
            with self.sessions.hold(params):
                outcome, output_format = self._run(method, params, headers, body, note)
        except ClickHouseError as error:
            return Response(error.http_status, error.body(self.engine.version), base | {
                "X-ClickHouse-Exception-Code": str(error.code),
                "Content-Type": "text/plain; charset=UTF-8",
            }), f"{note[0]} -> {error.name}"  # fmt: skip
        response = Response(200, outcome.data, base | {
            "X-ClickHouse-Summary": json.dumps(outcome.summary),
            "Content-Type": _CONTENT_TYPES.get(output_format or "", "text/plain; charset=UTF-8"),
        })  # fmt: skip
        if output_format is not None:
            response.headers["X-ClickHouse-Format"] = output_format
            response.headers["Content-Type"] = _CONTENT_TYPES.get(
                output_format, "application/octet-stream"
            )
        self._compress(response, params, headers)
        return response, note[0]

    def _run(
        self, method: str, params: dict[str, str], headers: dict[str, str], body: bytes,
        note: list[str],
    ) -> tuple[Outcome, str | None]:  # fmt: skip
        if headers.get("content-type", "").startswith("multipart/form-data"):
            params, body = _form(params, headers["content-type"], body)
        query = params.get("query", "")
        text = (query + "\n").encode() + body if query else body
        try:
            statement = parse_request(text)
        except SqlShapeError as exc:
            raise ClickHouseError.of(62, "SYNTAX_ERROR", str(exc)) from None
        if self.clustered:
            statement = dataclasses.replace(statement, sql=one_node(statement.sql))
        note[0] = statement.sql[:120].replace("\n", " ")
        if statement.kind == "SET" or "TEMPORARY" in statement.sql[:30].upper():
            raise ClickHouseError.of(48, "NOT_IMPLEMENTED", (
                "the test server keeps no session state (SET, temporary tables): pass "
                "settings as URL parameters, per request"
            ))  # fmt: skip
        if method == "GET" and statement.kind not in _READ_ONLY:
            raise ClickHouseError.of(
                164, "READONLY", "Cannot execute query in readonly mode: use POST to write"
            )
        settings = {k: v for k, v in params.items()
                    if k not in RESERVED and not k.startswith("param_")}  # fmt: skip
        bound = {k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")}
        default_format = params.get("default_format") or "TabSeparated"
        outcome = self.engine.run(
            statement, params.get("database") or headers.get("x-clickhouse-database", "default"),
            settings, bound, default_format,
        )  # fmt: skip
        output_format = statement.output_format
        if output_format is None and statement.produces_output:
            output_format = default_format
        return outcome, output_format

    def _authenticate(self, params: dict[str, str], headers: dict[str, str]) -> None:
        user, password = params.get("user", "default"), params.get("password", "")
        if "x-clickhouse-user" in headers:
            user, password = headers["x-clickhouse-user"], headers.get("x-clickhouse-key", "")
        authorization = headers.get("authorization", "")
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        if (user, password) != (self.user, self.password):
            raise ClickHouseError.of(516, "AUTHENTICATION_FAILED", (
                f"{user}: Authentication failed: password is incorrect, or there is no user "
                "with such name"
            ))  # fmt: skip

    def _decoded(self, params: dict[str, str], headers: dict[str, str], body: bytes) -> bytes:
        if params.get("decompress") == "1" or params.get("compress") == "1":
            raise ClickHouseError.of(
                48, "NOT_IMPLEMENTED", "ClickHouse's native block compression (compress, "
                "decompress) is not supported by the test server: use Content-Encoding"
            )  # fmt: skip
        encoding = headers.get("content-encoding", "").strip().lower()
        if not encoding or encoding == "identity":
            return body
        if encoding not in CODECS:
            raise ClickHouseError.of(
                48, "NOT_IMPLEMENTED", f"Unknown HTTP Content-Encoding {encoding!r}"
            )
        try:
            return CODECS[encoding][1](body)
        except Exception as exc:
            raise ClickHouseError.of(
                27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", f"Cannot decode {encoding}: {exc}"
            ) from exc

    @staticmethod
    def _compress(response: Response, params: dict[str, str], headers: dict[str, str]) -> None:
        if params.get("enable_http_compression", "1") not in ("1", "true") or not response.body:
            return
        accepted = headers.get("accept-encoding", "")
        # A server's preference (chooseHTTPCompressionMethod), not the client's order.
        chosen = next((name for name in CODECS if name in accepted), None)
        if chosen is not None:
            response.body = CODECS[chosen][0](response.body)
            response.headers["Content-Encoding"] = chosen


def _check_fields(fields: list[str]) -> None:
    """Refuse what ClickHouse's HTMLForm refuses; `fields` as they arrived (name=value)."""
    if len(fields) > MAX_FIELDS:
        raise ClickHouseError.of(1000, "POCO_EXCEPTION", "Too many form fields")
    for field in fields:
        name, _, value = field.partition("=")
        if len(name) > MAX_FIELD_NAME:
            raise ClickHouseError.of(1000, "POCO_EXCEPTION", "Field name too long")
        if len(value) > MAX_FIELD_VALUE:
            raise ClickHouseError.of(1000, "POCO_EXCEPTION", (
                f"Field value too long: {name} has {len(value)} bytes, a server takes "
                f"{MAX_FIELD_VALUE} (http_max_field_value_size)"
            ))  # fmt: skip


def _form(params: dict[str, str], content_type: str, body: bytes) -> tuple[dict[str, str], bytes]:
    """A multipart form's `query` and `param_*` fields over the URL's parameters."""
    message = BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = dict(params)
    for part in message.walk():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        if part.get_filename() is not None:
            raise ClickHouseError.of(
                48, "NOT_IMPLEMENTED", "external data (multipart files) is not supported"
            )
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        _check_fields([f"{name}={raw.decode('latin-1')}"])  # the limit counts bytes
        fields[name] = raw.decode()
    return fields, b""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clickhouse-connect pools its connections
    server: Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def handle_one_request(self) -> None:
        """The stdlib's, with ClickHouse's request-line limit (1 MiB) for its 64 KiB."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_URI + 1)
            if len(self.raw_requestline) > MAX_URI:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            handler = getattr(self, f"do_{self.command}", None)
            if handler is None:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            handler()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _serve logs each request once, with its statement

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            body = self._body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            response, what = self.server.app.answer(self.command, self.path, headers, body)
        except Exception as exc:
            # A bug of this server, answered as one (a dropped connection would read as an
            # outage, a transient error, to the client) and logged in full.
            traceback.print_exc()
            error = ClickHouseError.of(1001, "STD_EXCEPTION", f"test server bug: {exc!r}")
            headers_out = {"X-ClickHouse-Exception-Code": "1001", "Connection": "close"}
            response, what = Response(500, error.body("test"), headers_out), "-> test server bug"
            self.close_connection = True
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
        ms = (time.monotonic() - started) * 1000
        self.log_message("%s %d %.1fms %s", self.command, response.status, ms, what)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)  # the CRLF after each chunk
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold the exit

    def __init__(self, address: tuple[str, int], app: ClickHouseHTTP):
        super().__init__(address, Handler)
        self.app = app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="chdb's data directory")
    parser.add_argument("--port-file", type=Path, required=True, help="written when listening")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--cluster", help="be the one node of this cluster")
    args = parser.parse_args(argv)
    if args.cluster:
        config = write_config(args.data.with_name(args.data.name + "-config"), args.cluster)
        engine = Engine(args.data, config, CLUSTER_DEFAULTS)
    else:
        engine = Engine(args.data)
    app = ClickHouseHTTP(engine, args.user, args.password, clustered=bool(args.cluster))
    server = Server((args.host, args.port), app)
    ready = args.port_file.with_suffix(".tmp")
    ready.write_text(str(server.server_address[1]))
    os.replace(ready, args.port_file)  # whole or absent: the fixture polls for it

    def stop(signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever(), which runs in this (the main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"ClickHouse HTTP (chdb {engine.version}) on {args.host}:{args.port_file.read_text()}",
          file=sys.stderr, flush=True)  # fmt: skip
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    engine.close()  # after the statement running now; chdb's threads stop before exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
