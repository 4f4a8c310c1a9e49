"""A request's body to verdicts and answer, and its dead letters: pure, every case."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_murmur2

from pipeline.collect.auth import Grant, parse_tokens
from pipeline.collect.batch import (
    COLLECTOR_REJECTION_CODES,
    Event,
    answer,
    judge,
    media_kind,
    split_events,
)
from pipeline.collect.dead_letters import dead_letter
from pipeline.collect.publish import partition_of
from pipeline.contract import REJECTION_CODES, Rejection, Touchpoint, Validator
from tests.support.contract_documents import invoice
from tests.support.runtime_rig import TOPIC, RuntimeRig, record

BILLING = Grant(frozenset({"billing"}), False, 1)
EVERYONE = Grant(frozenset(), True, 2)
VALIDATOR = Validator()


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [("application/json", "one"), ("application/json; charset=utf-8", "one"),
     ("Application/X-NDJSON", "lines"), ("application/jsonl", "lines"), ("text/plain", None),
     ("", None), (None, None), ("application/json-seq", None)],
)  # fmt: skip
def test_media_types(content_type: str | None, kind: str | None) -> None:
    assert media_kind(content_type) == kind


def test_lines_are_numbered_from_one_blank_lines_skipped_crlf_taken() -> None:
    body = b'{"a": 1}\r\n\n   \n{"b": 2}\n{"c": 3}'
    assert split_events(body, "lines") == [
        Event(1, b'{"a": 1}'), Event(4, b'{"b": 2}'), Event(5, b'{"c": 3}'),
    ]  # fmt: skip
    assert split_events(b"\n\n", "lines") == []
    # One JSON touchpoint: the whole body, even pretty-printed over lines, even empty.
    assert split_events(b'{\n "a": 1\n}\n', "one") == [Event(1, b'{\n "a": 1\n}\n')]
    assert split_events(b"", "one") == [Event(1, b"")]


def test_each_event_is_accepted_or_refused_with_the_validators_reason() -> None:
    events = split_events(
        b"\n".join([invoice(), b'{"event_id": ', invoice(department="sales"),
                    invoice(event_id="ev-2", journey_id="INV-1")]), "lines")  # fmt: skip
    verdicts = judge(events, VALIDATOR, BILLING)
    assert [(a.line, a.key, a.department) for a in verdicts.accepted] == [
        (1, b"C-1", "billing"), (4, b"INV-1", "billing"),
    ]  # fmt: skip
    assert verdicts.accepted[0].raw == invoice()  # sent exactly as received
    assert [(r.line, r.rejection.code, r.rejection.field) for r in verdicts.refused] == [
        (2, "not_json", "message"), (3, "department_not_allowed", "department"),
    ]  # fmt: skip
    not_allowed = verdicts.refused[1].rejection
    assert not_allowed.department == "sales"
    assert not_allowed.message == (
        "department: 'sales' is not one this token may emit for, expected billing"
    )
    assert judge(events[2:3], VALIDATOR, EVERYONE).accepted[0].department == "sales"


def test_answers_202_with_the_refused_lines_and_400_when_all_are_refused() -> None:
    mixed = judge(split_events(invoice() + b"\n[1]\n", "lines"), VALIDATOR, BILLING)
    status, body = answer(mixed)
    assert status == 202
    assert json.loads(body) == {
        "accepted": 1,
        "rejected": [{"line": 2, "code": "not_object", "field": "message",
                      "reason": "message: got array [1], expected one JSON object"}],
    }  # fmt: skip
    bad = judge(split_events(b"[1]\n" + invoice(department="sales"), "lines"), VALIDATOR, BILLING)
    status, body = answer(bad)
    assert status == 400 and json.loads(body)["accepted"] == 0
    assert [r["code"] for r in json.loads(body)["rejected"]] == [
        "not_object", "department_not_allowed"]  # fmt: skip
    assert answer(judge(split_events(invoice(), "one"), VALIDATOR, BILLING)) == (
        202, b'{"accepted":1,"rejected":[]}')  # fmt: skip


lines = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([invoice(), invoice(department="sales"), invoice(event_id=""),
                     invoice(occurred_at="2025-06-03T10:17:00"), b"{}", b"null",
                     invoice(department="maintenance", type="contact", attributes={})]),
).map(lambda line: line.replace(b"\n", b" "))  # fmt: skip


@given(st.lists(lines, max_size=30), st.sampled_from([BILLING, EVERYONE]))
def test_property_every_event_is_answered_once_and_accepted_only_if_valid_and_allowed(
    body_lines: list[bytes], grant: Grant
) -> None:
    events = split_events(b"\n".join(body_lines), "lines")
    verdicts = judge(events, VALIDATOR, grant)
    status, body = answer(verdicts)
    answered = json.loads(body)
    refused_lines = [r["line"] for r in answered["rejected"]]
    assert answered["accepted"] + len(refused_lines) == len(events)
    assert refused_lines == sorted(set(refused_lines))
    assert status == (400 if refused_lines and not answered["accepted"] else 202)
    codes = set(REJECTION_CODES) | set(COLLECTOR_REJECTION_CODES)
    assert {r["code"] for r in answered["rejected"]} <= codes
    for item in verdicts.accepted:
        touchpoint = VALIDATOR.validate(item.raw)
        assert isinstance(touchpoint, Touchpoint) and grant.allows(touchpoint.department)
        assert item.key == touchpoint.key.encode()
    for line, raw in ((e.line, e.raw) for e in events):
        if line in refused_lines:
            verdict = VALIDATOR.validate(raw)
            assert isinstance(verdict, Rejection) or not grant.allows(verdict.department)


@given(st.binary(min_size=1, max_size=200), st.integers(1, 64))
def test_property_a_key_gets_the_partition_every_kafka_client_gives_it(
    key: bytes, partitions: int
) -> None:
    """kafka-python's murmur2 (the emitter's, written apart from aiokafka's), as the Java
    client: a journey's events share a partition whichever way they were sent."""
    assert partition_of(key, partitions) == (kafka_murmur2(key) & 0x7FFFFFFF) % partitions


def test_a_dead_letter_has_the_workers_headers_with_the_collector_as_its_source(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    raw = b'{"event_id": "x", "department": "billing"}'
    rejection = VALIDATOR.validate(raw)
    assert isinstance(rejection, Rejection)
    value, headers = dead_letter(raw, rejection, request_id="r1", line=7,
                                 departments="billing", max_message_bytes=1 << 20)  # fmt: skip
    rig = runtime_factory()
    rig.deliver([record(TOPIC, 0, 0, raw)])
    (worker,) = [m for b in rig.runtime.sink._batches.values() for m in b.messages
                 if m.topic == "touchpoints.dlq"]  # fmt: skip
    ours, theirs = dict(headers), dict(worker.headers)
    assert value == worker.value == raw
    source = {"source_topic", "source_partition", "source_offset"}
    assert set(theirs) - source == set(ours) - {"source", "source_request", "source_line",
                                                "source_departments"}  # fmt: skip
    assert {k: v for k, v in ours.items() if k in theirs} == {
        k: v for k, v in theirs.items() if k not in source}  # fmt: skip
    assert (ours["source"], ours["source_request"], ours["source_line"],
            ours["source_departments"]) == (b"collector", b"r1", b"7", b"billing")  # fmt: skip


@given(st.integers(0, 300_000), st.integers(65_536, 1 << 20))
def test_property_a_dead_letter_fits_the_topic_and_names_the_whole_payload(
    size: int, limit: int
) -> None:
    raw = b'{"department": "billing", "x": "' + b"y" * size + b'"}'
    rejection = Rejection(code="too_large", field="message", message="m" * 300,
                          department="billing")  # fmt: skip
    value, headers = dead_letter(raw, rejection, request_id="r" * 32, line=10_000,
                                 departments="*", max_message_bytes=limit)  # fmt: skip
    named = dict(headers)
    encoded = len(value) + sum(len(k) + len(v) for k, v in headers) + 128
    assert encoded <= limit
    assert raw.startswith(value)
    assert named["raw_truncated"] == (b"1" if value != raw else b"0")
    assert named["raw_size"] == str(len(raw)).encode()
    assert named["raw_sha256"] == hashlib.sha256(raw).hexdigest().encode()


def test_a_reason_quoting_a_lone_surrogate_still_encodes() -> None:
    rejection = Rejection(code="bad_slug", field="department", message="department: '\udcff'",
                          department="\udcff")  # fmt: skip
    _, headers = dead_letter(b"x", rejection, request_id="r", line=1, departments="*",
                             max_message_bytes=1 << 20)  # fmt: skip
    assert dict(headers)["department"] == b"\\udcff"


def test_tokens_of_a_grant_are_what_the_configuration_lists() -> None:
    table = parse_tokens('{"t1": ["billing"], "t2": ["*"]}', "tokens")
    assert table.authenticate("Bearer t1") == BILLING
    grant = table.authenticate("Bearer t2")
    assert grant is not None and grant.every_department and grant.index == 2
