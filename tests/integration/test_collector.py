"""`journeys collect` on the real broker: accepted events reach the touchpoints topic once
per request, keyed and partitioned as every Kafka client would; a retried request is
de-duplicated by the worker; every rejection code answers as documented and is
dead-lettered; 401, 413 and 429 as specified; 503 when the broker is stopped, and a stop on
SIGTERM ends with exit 0."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from pipeline.collect.batch import COLLECTOR_REJECTION_CODES
from pipeline.contract import REJECTION_CODES
from pipeline.kafka.local import free_port
from tests.support.collector_process import CollectorProcess, collector_env
from tests.support.kafka import new_broker
from tests.support.worker_process import JOURNEYS, WorkerProcess, dump, worker_env

PARTITIONS = 4
NOW = datetime.now(UTC).replace(microsecond=0)


def event(number: int, **changes: Any) -> dict[str, Any]:
    """A valid billing event; one journey per five events."""
    return {
        "event_id": f"collect-{number}",
        "occurred_at": (NOW - timedelta(hours=2, minutes=number)).isoformat(),
        "customer_id": f"C-{number % 7}",
        "journey_id": f"INV-{number // 5}",
        "department": "billing",
        "type": "invoice_issued",
        "stage": "billing",
        "channel": "email",
        "attributes": {"invoice_id": f"I-{number}", "amount": 10 + number},
    } | changes


def line(document: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def messages(bootstrap: str, topic: str, expected: int, timeout: float = 20) -> list[Any]:
    """Every message of `topic` (at least `expected` of them), read from the start."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1000)  # fmt: skip
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found += [m for batch in consumer.poll(500).values() for m in batch]
            if len(found) >= expected and not consumer.poll(300):
                break
        return found
    finally:
        consumer.close()


def test_accepted_events_reach_the_topic_once_per_request_and_a_retry_counts_once(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    """A department's system that retries a request (a timeout on its side after the
    collector's 202) sends every event twice: the topic holds both copies, one per request,
    and the worker stores and scores each event once."""
    body = b"\n".join(line(event(n)) for n in range(60)) + b"\n"
    env = collector_env(bootstrap_servers, unique_name)
    with CollectorProcess(env, tmp_path / "collector.log") as collector:
        first = collector.post(body)
        retried = collector.post(body)
        assert first[0] == retried[0] == 202
        assert first[2] == retried[2] == {"accepted": 60, "rejected": []}
        assert first[1]["X-Request-Id"] != retried[1]["X-Request-Id"]
        # Acknowledged before the answer: the messages are there at once.
        found = messages(bootstrap_servers, unique_name, 120, timeout=5)
        assert collector.terminate()[0] == 0, collector.tail()
    assert Counter(m.value for m in found) == {line(event(n)): 2 for n in range(60)}
    for message in found:  # where kafka-python (and the Java client) put the same key
        key = json.loads(message.value)["journey_id"].encode()
        assert message.key == key
        assert message.partition == (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
    # The worker de-duplicates the retried request by event_id.
    worker = WorkerProcess(worker_env(tmp_path, bootstrap_servers, unique_name, "w", PARTITIONS),
                           tmp_path / "worker.log")  # fmt: skip
    worker.start()
    try:
        counts = worker.settled(timeout=90)
    finally:
        assert worker.stop() == 0, worker.tail()
    assert (counts["received"], counts["accepted"], counts["duplicates"]) == (120, 120, 60)
    stored = dump(
        worker.env,
        {
            "touchpoints": "SELECT event_id, count() AS n FROM touchpoints "
            "FINAL GROUP BY event_id ORDER BY event_id"
        },
    )
    assert {row["event_id"]: row["n"] for row in stored["touchpoints"]} == {
        f"collect-{n}": 1 for n in range(60)}  # fmt: skip


def rejected_lines() -> list[tuple[str, bytes]]:
    """One line per code an event can be refused with over HTTP (a tombstone cannot be
    sent), each with the code the collector must answer."""
    bad = [
        ("too_large", line(event(1, attributes={"pad": "x" * 70_000}))),
        ("not_utf8", b'{"event_id": "\xff"}'),
        ("not_json", b'{"event_id": '),
        ("not_object", b"[1, 2]"),
        ("too_deep", b"[" * 40 + b"]" * 40),
        ("unsupported_schema_version", line(event(2, schema_version=2))),
        ("missing_field", line(event(3, event_id=...))),
        ("wrong_type", line(event(4, event_id=4))),
        ("empty_identifier", line(event(5, customer_id=""))),
        ("identifier_too_long", line(event(6, journey_id="j" * 129))),
        ("bad_slug", line(event(7, department="Billing"))),
        ("unknown_type", line(event(8, type="complaint"))),
        ("unknown_channel", line(event(9, channel="sms"))),
        ("naive_timestamp", line(event(10, occurred_at="2025-06-03T09:00:00"))),
        ("bad_timestamp", line(event(11, occurred_at="2025-02-30T09:00:00Z"))),
        ("future_timestamp", line(event(12, occurred_at=(NOW + timedelta(days=2)).isoformat()))),
        ("early_timestamp", line(event(13, occurred_at="1899-12-31T23:00:00Z"))),
        ("missing_attribute", line(event(14, type="promise_kept", attributes={}))),
        ("bad_attribute", line(event(15, type="survey_response", attributes={"csat": 6}))),
        ("number_out_of_range", line(event(16, attributes={"n": 2**64}))),
        ("string_too_long", line(event(17, attributes={"note": "x" * 16_385}))),
        ("too_many_items", line(event(18, attributes={"a": [0] * 1025}))),
        ("unknown_field", line(event(19, priority="high"))),
        ("department_not_allowed", line(event(20, department="sales"))),
    ]
    codes = {code for code, _ in bad}
    assert codes == set(REJECTION_CODES) - {"tombstone"} | set(COLLECTOR_REJECTION_CODES)
    return bad


def test_every_rejection_code_is_answered_by_line_and_dead_lettered_with_its_reason(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    bad = rejected_lines()
    body = b"\n".join([line(event(100)), *(raw for _, raw in bad)])
    env = collector_env(bootstrap_servers, unique_name)
    with CollectorProcess(env, tmp_path / "collector.log") as collector:
        status, headers, answer = collector.post(body)
        assert status == 202, answer
        assert answer["accepted"] == 1
        got = [(r["line"], r["code"]) for r in answer["rejected"]]
        assert got == [(number, code) for number, (code, _) in enumerate(bad, start=2)]
        for rejected in answer["rejected"]:
            assert rejected["reason"].startswith(rejected["field"] + ":"), rejected
        # Every event refused: 400 with the same body shape.
        status, _, everything_bad = collector.post(b"\n".join(raw for _, raw in bad[:3]))
        assert status == 400 and everything_bad["accepted"] == 0
        assert [r["code"] for r in everything_bad["rejected"]] == ["too_large", "not_utf8",
                                                                   "not_json"]  # fmt: skip
        letters = messages(bootstrap_servers, f"{unique_name}.dlq", len(bad) + 3, timeout=5)
        assert collector.terminate()[0] == 0
    first = [m for m in letters if dict(m.headers)["source_request"] ==
             headers["X-Request-Id"].encode()]  # fmt: skip
    assert len(first) == len(bad)
    by_line = {int(dict(m.headers)["source_line"]): m for m in first}
    for number, (code, raw) in enumerate(bad, start=2):
        named = dict(by_line[number].headers)
        assert named["reason_code"] == code.encode()
        assert named["source"] == b"collector"
        assert named["source_departments"] == b"billing"
        assert by_line[number].value == raw  # the bytes as sent
    assert dict(by_line[len(bad) + 1].headers)["department"] == b"sales"


def test_unauthorised_too_large_and_too_fast_requests(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    env = collector_env(bootstrap_servers, unique_name, collector_max_body_bytes="4096",
                        collector_max_events="5", collector_rate_events_per_second="1",
                        collector_rate_burst_events="6")  # fmt: skip
    five = b"\n".join(line(event(n)) for n in range(5))
    with CollectorProcess(env, tmp_path / "collector.log") as collector:
        assert collector.post(five, token=None)[0] == 401
        status, headers, answer = collector.post(five, token="billing-secret-")
        assert (status, answer["error"]) == (401, "unauthorized")
        assert headers["WWW-Authenticate"].startswith("Bearer")
        status, _, answer = collector.post(b" " * 5000)
        assert (status, answer["error"]) == (413, "too_large")
        status, _, answer = collector.post(b"{}\n" * 6)
        assert (status, answer["error"]) == (413, "too_many_events")
        assert collector.post(five)[0] == 202
        status, headers, answer = collector.post(five)  # 1 event left in the bucket
        assert (status, answer["error"]) == (429, "rate_limited")
        assert 1 <= int(headers["Retry-After"]) <= 5
        assert collector.post(five, token="ops-secret-2")[0] == 202  # a bucket of its own
        metrics = collector.get("/metrics")[1].decode()
        assert collector.terminate()[0] == 0
    for status in (202, 401, 413, 429):
        assert f'journeys_collector_requests_total{{status="{status}"}}' in metrics
    assert "billing-secret-1" not in collector.tail()  # never logged


def test_the_collector_answers_503_while_the_broker_is_down_and_stops_with_exit_0(
    unique_name: str, tmp_path: Path
) -> None:
    broker = new_broker(tmp_path / "kafka")  # its own: this test stops it
    broker.start(timeout=120)
    state = broker.state()
    assert state is not None
    env = collector_env(state.bootstrap_servers, unique_name,
                        collector_ack_timeout_seconds="3")  # fmt: skip
    try:
        with CollectorProcess(env, tmp_path / "collector.log") as collector:
            assert collector.post(line(event(1)))[0] == 202
            broker.stop()
            started = time.monotonic()
            status, headers, answer = collector.post(line(event(2)))
            assert (status, answer["error"]) == (503, "kafka_unavailable"), answer
            assert time.monotonic() - started < 8
            assert int(headers["Retry-After"]) >= 1
            assert answer["reason"].startswith(f"Kafka at {state.bootstrap_servers}")
            assert collector.get("/healthz")[0] == 200
            metrics = collector.get("/metrics")[1].decode()
            assert 'journeys_collector_events_total{outcome="unavailable"} 1.0' in metrics
            time.sleep(2)  # an outage's errors are said, not flooded
            code, seconds = collector.terminate()
            assert (code, seconds < 10) == (0, True), collector.tail()
            assert len(collector.log.read_text().splitlines()) < 60, collector.tail()
    finally:
        if broker.state() is not None:
            broker.stop()


def test_kafka_unreachable_at_start_and_bad_tokens_are_said_and_a_dry_run_needs_no_kafka(
    unique_name: str, tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    env = collector_env(nowhere, unique_name, kafka_connect_timeout_seconds="2")
    started = time.monotonic()
    done = subprocess.run([JOURNEYS, "collect"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert f"cannot reach Kafka at {nowhere}" in done.stderr
    assert time.monotonic() - started < 30
    broken = env | {"JOURNEYS_COLLECTOR_TOKENS": '{"s3cr3t-abc": ["Billing"]}'}
    done = subprocess.run([JOURNEYS, "collect"], env=broken, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "JOURNEYS_COLLECTOR_TOKENS: token 1 of 1: department" in done.stderr
    assert "s3cr3t-abc" not in done.stderr
    with CollectorProcess(env, tmp_path / "dry.log", "--dry-run") as dry:
        status, _, answer = dry.post(line(event(1)) + b"\n" + line(event(2, department="sales")))
        assert (status, answer["accepted"]) == (202, 1)
        assert answer["rejected"][0]["code"] == "department_not_allowed"
        assert dry.terminate()[0] == 0
