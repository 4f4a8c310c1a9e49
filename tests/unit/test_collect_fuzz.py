"""Fuzzing the collector over HTTP (hypothesis on raw bytes and headers): no 5xx, no crash,
and no accepted event that the validator would refuse or the token may not send.

Each example is one request on loopback to the collector's real aiohttp application with an
in-memory publisher (what would go to Kafka is kept and checked): bodies of random bytes,
of valid events broken at random places, of events for departments the token lacks, with
CRLF and blank lines; media types with parameters and in odd case; tokens valid, unknown
and malformed; unknown headers. A second test sends random bytes as the request itself.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.collect.batch import media_kind, split_events
from pipeline.contract import Touchpoint, Validator
from tests.support.collector_http import TOKENS, CollectorThread, MemoryPublisher, collector

VALIDATOR = Validator()
GRANTS = {token: set(departments) for token, departments in TOKENS.items()}
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip


@pytest.fixture(scope="module")
def publisher() -> MemoryPublisher:
    return MemoryPublisher()


@pytest.fixture(scope="module")
def server(publisher: MemoryPublisher) -> Iterator[CollectorThread]:
    # A tight rate, so that 429s happen among the examples too.
    with CollectorThread(collector(publisher, rate=20_000, burst=300, max_events=100)) as running:
        yield running


def touchpoint(event_id: str, department: str) -> bytes:
    return json.dumps({"event_id": event_id, "occurred_at": "2025-06-03T10:17:00+02:00",
                       "customer_id": "C-1", "department": department, "type": "contact",
                       "channel": "phone", "attributes": {"resolved": True}}).encode()  # fmt: skip


@st.composite
def broken(draw: st.DrawFn) -> bytes:
    """A valid event with bytes cut, replaced or inserted somewhere."""
    raw = touchpoint(draw(st.text(min_size=1, max_size=8)),
                     draw(st.sampled_from(["billing", "sales", "Billing", ""])))  # fmt: skip
    at = draw(st.integers(0, len(raw)))
    cut = draw(st.integers(0, 6))
    return raw[:at] + draw(st.binary(max_size=6)) + raw[at + cut :]


line = st.one_of(
    st.binary(max_size=80),
    broken(),
    st.builds(touchpoint, st.text(min_size=1, max_size=10),
              st.sampled_from(["billing", "sales", "maintenance"])),
    st.sampled_from([b"", b"   ", b"{}", b"null", b"[]", b'"x"', b"1e400", b"[" * 40]),
)  # fmt: skip
bodies = st.tuples(st.lists(line, max_size=40), st.sampled_from([b"\n", b"\r\n"])).map(
    lambda parts: parts[1].join(parts[0])
)
# Mostly requests that get past the token and the media type, where the events are judged
# (one_of picks its branches evenly: three of four branches here are usable ones).
usable_types = st.sampled_from(["application/json", "application/x-ndjson",
                                "APPLICATION/X-NDJSON", "application/x-ndjson; charset=utf-8",
                                "application/jsonl"])  # fmt: skip
content_types = st.one_of(
    usable_types, usable_types, usable_types,
    st.one_of(st.sampled_from(["text/plain", "multipart/form-data; boundary=x", ""]),
              st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)),
)  # fmt: skip
usable_tokens = st.sampled_from([f"Bearer {t}" for t in TOKENS] + ["bearer  billing-token-1 "])
authorizations = st.one_of(
    usable_tokens, usable_tokens, usable_tokens,
    st.one_of(st.sampled_from(["Bearer", "Basic abc", "", "Bearer billing-token-"]),
              st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)),
)  # fmt: skip
header_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).filter(
    lambda name: name.lower() not in ("content-length", "transfer-encoding", "host", "expect")
)
extra_headers = st.dictionaries(
    header_names, st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    max_size=4,
)  # fmt: skip


@FUZZ
@given(bodies, content_types, authorizations, extra_headers)
def test_fuzz_no_5xx_and_nothing_accepted_that_the_validator_or_the_token_refuses(
    server: CollectorThread, publisher: MemoryPublisher,
    body: bytes, content_type: str, authorization: str, headers: dict[str, str],
) -> None:  # fmt: skip
    sent = headers | {"Content-Type": content_type, "Authorization": authorization}
    published, lettered = len(publisher.events), len(publisher.dead_letters)
    started = time.monotonic()
    status, _, raw = server.request("POST", "/v1/touchpoints", body, sent)
    assert status < 500, (status, raw[:300])
    assert time.monotonic() - started < 5
    answer = json.loads(raw)
    new_events = publisher.events[published:]
    new_letters = publisher.dead_letters[lettered:]
    if status not in (202, 400) or "error" in answer:
        assert new_events == [] and new_letters == []
        return
    token = authorization.split(" ", 1)[1].strip()
    kind = media_kind(content_type)
    assert kind is not None
    events = split_events(body, kind)
    assert answer["accepted"] + len(answer["rejected"]) == len(events)
    assert (len(new_events), len(new_letters)) == (answer["accepted"], len(answer["rejected"]))
    assert status == (400 if answer["accepted"] == 0 else 202)
    for event in new_events:
        verdict = VALIDATOR.validate(event.raw)
        assert isinstance(verdict, Touchpoint), event.raw
        assert GRANTS[token] == {"*"} or verdict.department in GRANTS[token]
    assert [r["line"] for r in answer["rejected"]] == [int(dict(h)["source_line"])
                                                      for _, h in new_letters]  # fmt: skip


@FUZZ
@given(st.one_of(
    st.binary(max_size=300),
    st.builds(lambda head, tail: b"POST /v1/touchpoints HTTP/1.1\r\n" + head + b"\r\n\r\n" + tail,
              st.binary(max_size=200), st.binary(max_size=200)),
))  # fmt: skip
def test_fuzz_raw_requests_never_get_a_5xx_and_the_collector_keeps_serving(
    server: CollectorThread, raw: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    for status_line in answer.split(b"\r\n"):
        if status_line.startswith(b"HTTP/1."):
            assert status_line[9:10] != b"5", answer[:300]
    assert server.request("GET", "/healthz")[0] == 200
