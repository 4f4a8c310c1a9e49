"""The collector's HTTP answers, in the order of its checks, on loopback with an in-memory
publisher (tests/integration/test_collector.py runs the command on the real broker)."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.collect.batch import REQUEST_ERRORS
from pipeline.collect.openapi import openapi_json
from pipeline.settings import Settings
from tests.support.collector_http import CollectorThread, MemoryPublisher, collector
from tests.support.contract_documents import invoice

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "collector.openapi.json"


@pytest.fixture
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture
def server(publisher: MemoryPublisher) -> Iterator[CollectorThread]:
    with CollectorThread(collector(publisher)) as running:
        yield running


def test_accepted_events_are_published_and_refused_ones_dead_lettered(
    server: CollectorThread, publisher: MemoryPublisher
) -> None:
    body = b"\n".join([invoice(), b"", invoice(event_id=""), invoice(department="sales")])
    status, headers, answer = server.post(body)
    assert status == 202
    assert answer["accepted"] == 1
    assert [(r["line"], r["code"]) for r in answer["rejected"]] == [
        (3, "empty_identifier"), (4, "department_not_allowed")]  # fmt: skip
    assert [e.raw for e in publisher.events] == [invoice()]
    letters = [(raw, dict(h)) for raw, h in publisher.dead_letters]
    assert [raw for raw, _ in letters] == [invoice(event_id=""), invoice(department="sales")]
    assert {h["source_request"] for _, h in letters} == {headers["X-Request-Id"].encode()}
    assert [h["source_line"] for _, h in letters] == [b"3", b"4"]


def test_one_json_touchpoint_and_every_event_refused(server: CollectorThread) -> None:
    assert server.post(invoice(), content_type="application/json")[2] == {
        "accepted": 1, "rejected": []}  # fmt: skip
    status, _, answer = server.post(b'{"event_id": ', content_type="application/json")
    assert (status, answer["accepted"], answer["rejected"][0]["code"]) == (400, 0, "not_json")


@pytest.mark.parametrize(
    ("token", "content_type", "body", "status", "code"),
    [
        (None, "application/x-ndjson", invoice(), 401, "unauthorized"),
        ("nope", "application/x-ndjson", invoice(), 401, "unauthorized"),
        ("billing-token-1", "text/csv", invoice(), 415, "unsupported_media_type"),
        ("billing-token-1", "application/x-ndjson", b"\n \n", 400, "no_events"),
        ("billing-token-1", "application/x-ndjson", b"x" * 70_000, 413, "too_large"),
        ("billing-token-1", "application/x-ndjson", b"{}\n" * 51, 413, "too_many_events"),
    ],
)
def test_requests_refused_as_a_whole(
    server: CollectorThread, publisher: MemoryPublisher, token: str | None,
    content_type: str, body: bytes, status: int, code: str,
) -> None:  # fmt: skip
    answered, headers, answer = server.post(body, token=token, content_type=content_type)
    assert (answered, answer["error"]) == (status, code), answer
    assert REQUEST_ERRORS[code][0] == status
    if status == 401:
        assert headers["WWW-Authenticate"] == 'Bearer realm="journeys"'
    assert publisher.events == [] and publisher.dead_letters == []


def test_a_chunked_body_past_the_limit_is_refused_while_read(server: CollectorThread) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 8192

    status, _, raw = server.request(
        "POST", "/v1/touchpoints", chunks(),  # type: ignore[arg-type]
        {"Authorization": "Bearer billing-token-1", "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert (status, json.loads(raw)["error"]) == (413, "too_large")


def test_expect_100_continue_is_refused_before_the_body_is_sent(server: CollectorThread) -> None:
    """A client asking first (curl does for large bodies) sends nothing it need not."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/touchpoints HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-ndjson\r\nContent-Length: 10000000\r\n"
                     b"Expect: 100-continue\r\n\r\n")  # fmt: skip
        assert sock.recv(4096).startswith(b"HTTP/1.1 401 ")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        body = invoice()
        sock.sendall(b"POST /v1/touchpoints HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer billing-token-1\r\n"
                     b"Content-Type: application/x-ndjson\r\n"
                     b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))  # fmt: skip
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 202 ")


def test_a_gzip_body_is_read_and_its_limit_is_on_what_it_inflates_to(
    server: CollectorThread, publisher: MemoryPublisher
) -> None:
    headers = {"Content-Encoding": "gzip"}
    status, _, answer = server.post(gzip.compress(invoice()), **headers)
    assert (status, answer["accepted"]) == (202, 1)
    assert publisher.events[-1].raw == invoice()
    bomb = gzip.compress(b" " * 50_000_000)  # 48 KB in, 50 MB out
    status, _, answer = server.post(bomb, **headers)
    assert (status, answer["error"]) == (413, "too_large")


def test_an_expectation_other_than_100_continue_is_refused(server: CollectorThread) -> None:
    status, _, answer = server.post(invoice(), Expect="something-else")
    assert (status, answer["error"]) == (417, "unsupported_expectation")


def test_a_token_past_its_rate_gets_429_with_retry_after() -> None:
    publisher = MemoryPublisher()
    with CollectorThread(collector(publisher, rate=10, burst=50)) as server:
        assert server.post(b"\n".join([invoice()] * 50))[0] == 202
        status, headers, answer = server.post(invoice())
        assert (status, answer["error"], headers["Retry-After"]) == (429, "rate_limited", "1")
        # Another token has a bucket of its own.
        assert server.post(invoice(), token="ops-token-2")[0] == 202


def test_kafka_not_acknowledging_is_503_with_retry_after_and_nothing_accepted() -> None:
    publisher = MemoryPublisher(fail="Kafka did not acknowledge within 10 s")
    with CollectorThread(collector(publisher)) as server:
        status, headers, answer = server.post(invoice())
        assert (status, answer["error"], headers["Retry-After"]) == (503, "kafka_unavailable", "5")
        assert "did not acknowledge" in answer["reason"]
        publisher.fail, publisher.pending = None, 990  # Kafka's backlog near the limit
        status, headers, answer = server.post(b"\n".join([invoice()] * 11))
        assert (status, answer["error"], headers["Retry-After"]) == (503, "overloaded", "1")
        assert server.post(b"\n".join([invoice()] * 10))[0] == 202
        metrics = server.request("GET", "/metrics")[2].decode()
        assert 'journeys_collector_requests_total{status="503"} 2.0' in metrics
        assert 'journeys_collector_events_total{outcome="unavailable"} 1.0' in metrics
        assert 'journeys_collector_events_total{outcome="accepted"} 10.0' in metrics
        assert "journeys_collector_pending_events 990.0" in metrics


def test_health_metrics_and_the_committed_openapi_description(server: CollectorThread) -> None:
    server.post(b"\n".join([invoice(), b"[1]"]))
    assert server.request("GET", "/healthz")[:1] == (200,)
    status, headers, metrics = server.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = metrics.decode()
    assert 'journeys_collector_rejected_by_code_total{code="not_object"} 1.0' in text
    assert 'journeys_collector_accepted_by_department_total{department="billing"} 1.0' in text
    assert "journeys_collector_request_seconds_bucket" in text
    # The description served is the one committed, for the default limits.
    status, _, served = server.request("GET", "/openapi.json")
    defaults = Settings.model_construct()
    committed = openapi_json(defaults.collector_max_body_bytes, defaults.collector_max_events)
    assert status == 200 and json.loads(served)["openapi"] == "3.1.0"
    assert COMMITTED.read_bytes() == committed, (
        "docs/collector.openapi.json is stale: journeys collect --openapi > "
        "docs/collector.openapi.json"
    )
    served_defaults = json.loads(served)
    assert served_defaults["paths"].keys() == json.loads(committed)["paths"].keys()


def test_the_description_lists_every_answer_the_collector_gives() -> None:
    document = json.loads(COMMITTED.read_text())
    post = document["paths"]["/v1/touchpoints"]["post"]
    statuses = {str(status) for status, _ in REQUEST_ERRORS.values()} | {"202", "400"}
    assert set(post["responses"]) == statuses
    errors = document["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert errors == sorted(REQUEST_ERRORS)
    codes = document["components"]["schemas"]["Answer"]["properties"]["rejected"]["items"]
    assert "department_not_allowed" in codes["properties"]["code"]["enum"]
    assert document["components"]["schemas"]["Touchpoint"]["$id"].endswith("/1-0-1")
