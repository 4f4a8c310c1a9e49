"""The test ClickHouse endpoint itself (tests/support/clickhouse_http.py) behaves as a
server does where the server path depends on it: the client's own insert path, errors,
per-request settings and a server's defaults, sessions, users, compression, field limits,
and a start that fails loudly.
"""

from __future__ import annotations

import base64
import gzip
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from tests.support.clickhouse_process import ClickHouseProcess

pytestmark = pytest.mark.integration


def post(
    server: ClickHouseProcess, sql: str, method: str = "POST", **params: str
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one raw request, as the server answered it."""
    headers = {k.removeprefix("header_").replace("_", "-"): params.pop(k)
               for k in list(params) if k.startswith("header_")}  # fmt: skip
    url = f"{server.url}/?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, data=sql.encode() if method == "POST" else None)
    credentials = f"{server.user}:{server.password}".encode()
    request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def client(clickhouse_server: ClickHouseProcess, unique_name: str) -> Any:
    made = clickhouse_connect.get_client(
        dsn=clickhouse_server.url, username=clickhouse_server.user,
        password=clickhouse_server.password, autogenerate_session_id=False,
    )  # fmt: skip
    made.command(f"CREATE DATABASE `{unique_name}`")
    yield made
    made.command(f"DROP DATABASE `{unique_name}`")
    made.close()


def test_the_clients_own_native_insert_compressed_and_chunked_round_trips(
    client: Any, unique_name: str
) -> None:
    table = f"`{unique_name}`.t"
    client.command(
        f"CREATE TABLE {table} (id UInt64, name LowCardinality(String), at DateTime64(3, 'UTC'),"
        " tags Array(String), score Nullable(Decimal(9, 2))) ENGINE = MergeTree ORDER BY id"
    )
    rows = [
        [1, "größer ✓", datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC), ["a", "b"], None],
        [2**63, "", datetime(1970, 1, 1, tzinfo=UTC), [], Decimal("-12.50")],
    ]
    # Native, lz4-compressed, streamed in chunks: the client's default write path.
    client.insert(table, rows, column_names=["id", "name", "at", "tags", "score"])
    read = client.query(f"SELECT * FROM {table} ORDER BY id").result_rows
    assert [[*r[:2], r[2].replace(tzinfo=UTC), *r[3:]] for r in read] == rows


def test_errors_come_as_clickhouse_sends_them(clickhouse_server: ClickHouseProcess) -> None:
    status, headers, body = post(clickhouse_server, "SELECT no_such_column")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "47")
    assert body.startswith(b"Code: 47. DB::Exception: ") and b"(UNKNOWN_IDENTIFIER)" in body
    assert b"(version " in body
    status, headers, body = post(clickhouse_server, "SELECT 1; SELECT 2")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62"), body
    assert b"Multi-statements are not allowed" in body
    status, _, body = post(clickhouse_server, "SELECT 'a;b' AS x; -- a comment after it")
    assert (status, body) == (200, b"a;b\n")
    status, headers, _ = post(clickhouse_server, "", method="GET", query="CREATE DATABASE x")
    assert headers["X-ClickHouse-Exception-Code"] == "164"  # READONLY: GET only reads
    status, headers, _ = post(clickhouse_server, "SET max_threads = 1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (501, "48")


def test_settings_hold_for_their_request_over_a_servers_defaults(
    clickhouse_server: ClickHouseProcess, client: Any, unique_name: str
) -> None:
    probe = "SELECT getSetting('max_threads'), getSetting('date_time_input_format')"
    assert post(clickhouse_server, probe, max_threads="1")[2] == b"1\tbasic\n"
    # The next request starts from a server's defaults again: basic DateTime parsing, which
    # refuses ISO 8601 with a zone, not clickhouse-local's best_effort.
    status, _, body = post(clickhouse_server, probe)
    assert status == 200 and not body.startswith(b"1\t") and body.endswith(b"\tbasic\n")
    client.command(f"CREATE TABLE `{unique_name}`.t (at DateTime64(3, 'UTC')) ENGINE = Memory")
    insert = (
        f'INSERT INTO `{unique_name}`.t FORMAT JSONEachRow\n{{"at": "2026-03-01T09:30:00.250Z"}}'
    )
    status, headers, _ = post(clickhouse_server, insert)
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "27")
    assert post(clickhouse_server, insert, date_time_input_format="best_effort")[0] == 200
    status, headers, _ = post(clickhouse_server, "SELECT 1", no_such_setting="1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "115")


def test_a_busy_session_refuses_a_second_request(clickhouse_server: ClickHouseProcess) -> None:
    def busy(session: str, answers: list[int]) -> None:
        answers.append(post(clickhouse_server, "SELECT sleep(1)", session_id=session)[0])

    outcomes: list[tuple[int, str | None, int]] = []
    for attempt in range(5):  # until the probe meets the session busy, not the other way
        slow: list[int] = []
        thread = threading.Thread(target=busy, args=(f"s-{attempt}", slow))
        thread.start()
        time.sleep(0.2)
        status, headers, _ = post(clickhouse_server, "SELECT 2", session_id=f"s-{attempt}")
        thread.join()
        outcomes.append((status, headers.get("X-ClickHouse-Exception-Code"), slow[0]))
        if slow[0] == 200:
            break
    assert outcomes[-1] == (500, "373", 200), outcomes  # SESSION_IS_LOCKED
    status, headers, _ = post(clickhouse_server, "SELECT 1", session_id="s2", session_check="1")
    assert headers["X-ClickHouse-Exception-Code"] == "372"  # SESSION_NOT_FOUND


def test_wrong_credentials_are_refused(clickhouse_server: ClickHouseProcess) -> None:
    request = urllib.request.Request(f"{clickhouse_server.url}/", data=b"SELECT 1")
    request.add_header("X-ClickHouse-User", clickhouse_server.user)
    request.add_header("X-ClickHouse-Key", "wrong")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert refused.value.headers["X-ClickHouse-Exception-Code"] == "516"


def test_responses_are_compressed_when_asked(clickhouse_server: ClickHouseProcess) -> None:
    status, headers, body = post(
        clickhouse_server, "SELECT number FROM numbers(1000) FORMAT CSV",
        enable_http_compression="1", header_Accept_Encoding="gzip",
    )  # fmt: skip
    assert (status, headers["Content-Encoding"], headers["X-ClickHouse-Format"]) == (
        200, "gzip", "CSV",
    )  # fmt: skip
    assert gzip.decompress(body).splitlines()[-1] == b"999"


def test_a_parameter_beyond_a_servers_field_limit_is_refused(
    clickhouse_server: ClickHouseProcess,
) -> None:
    _, headers, body = post(clickhouse_server, "SELECT {v:String}", param_v="x" * 140_000)
    assert headers["X-ClickHouse-Exception-Code"] == "1000" and b"Field value too long" in body


def test_a_server_that_cannot_start_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")  # chdb cannot open its data here
    server = ClickHouseProcess(tmp_path)
    with pytest.raises(RuntimeError, match="exited at start"):
        server.start(timeout=60)
    assert server.process is not None and server.process.returncode != 0
