"""Emitting to the real broker: the CLI and the Python emitter send exactly the valid events,
keyed as the contract says, and account for every refused one."""

from __future__ import annotations

import json
import os
import pty
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, TopicPartition

from pipeline.cli import cli
from pipeline.contract import Rejection, Touchpoint, Validator
from pipeline.emit import Emitter
from tests.support.kafka import create_topic

START = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "contact": {"reason": "no heating", "wait_seconds": 95, "resolved": False},
    "handoff": {"to_department": "maintenance", "context_transferred": True},
    "promise_made": {"promise_id": "p-1", "due_at": "2025-06-05T17:00:00+02:00"},
    "promise_kept": {"promise_id": "p-1"},
    "survey_response": {"csat": 4, "nps": 9},
    "invoice_issued": {"invoice_id": "inv-7", "amount": 129.5},
    "order_placed": {"order_id": "o-3", "promised_for": "2025-06-10T12:00:00Z"},
}
# Each kind of bad line, with the rejection code the summary must count it under.
BAD_LINES: list[tuple[str, bytes]] = [
    ("not_json", b'{"event_id": "broken", '),
    ("not_object", b'["not", "an", "object"]'),
    ("missing_field", b'{"event_id": "x", "customer_id": "c", "type": "contact"}'),
    (
        "naive_timestamp",
        b'{"event_id": "x", "occurred_at": "2025-06-02T08:00:00", '
        b'"customer_id": "c", "department": "sales", "type": "contact"}',
    ),
    (
        "unknown_type",
        b'{"event_id": "x", "occurred_at": "2025-06-02T08:00:00Z", '
        b'"customer_id": "c", "department": "sales", "type": "complaint"}',
    ),
    (
        "missing_attribute",
        b'{"event_id": "x", "occurred_at": "2025-06-02T08:00:00Z", '
        b'"customer_id": "c", "department": "sales", "type": "promise_made"}',
    ),
]


def touchpoint_lines(count: int, bad_every: int, seed: int = 3) -> list[bytes]:
    """`count` JSON lines; every `bad_every`-th is one of BAD_LINES, the rest valid."""
    rng = random.Random(seed)
    lines = []
    for number in range(1, count + 1):
        if number % bad_every == 0:
            lines.append(BAD_LINES[(number // bad_every) % len(BAD_LINES)][1])
            continue
        event_type = rng.choice(list(ATTRIBUTES))
        event: dict[str, Any] = {
            "event_id": f"ev-{number}",
            "occurred_at": (START + timedelta(seconds=number)).isoformat(),
            "customer_id": f"cust-{rng.randrange(500)}",
            "department": rng.choice(["sales", "customer_service", "billing", "maintenance"]),
            "type": event_type,
            "attributes": ATTRIBUTES[event_type],
        }
        if rng.random() < 0.7:
            event["journey_id"] = f"case-{rng.randrange(2000)}"
        lines.append(json.dumps(event).encode())
    return lines


def read_back(bootstrap_servers: str, topic: str, expected: int) -> list[Any]:
    """Every message on `topic`: until `expected` arrived, then 2 s more to catch extras."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    messages: list[Any] = []
    deadline, quiet_until = time.monotonic() + 60, None
    try:
        while time.monotonic() < deadline and (
            quiet_until is None or time.monotonic() < quiet_until
        ):
            for batch in consumer.poll(timeout_ms=500).values():
                messages.extend(batch)
            if len(messages) >= expected and quiet_until is None:
                quiet_until = time.monotonic() + 2
    finally:
        consumer.close()
    return messages


def expected_key(line: bytes) -> bytes:
    event = json.loads(line)
    return str(event.get("journey_id") or event["customer_id"]).encode()


def test_cli_sends_exactly_the_valid_lines_keyed_per_contract(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    lines = touchpoint_lines(10_000, bad_every=37)
    bad_numbers = [n for n in range(1, 10_001) if n % 37 == 0]
    valid = [line for n, line in enumerate(lines, 1) if n % 37]
    source = tmp_path / "touchpoints.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    create_topic(bootstrap_servers, unique_name, partitions=4)

    env = os.environ | {"JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}
    journeys = str(Path(sys.executable).with_name("journeys"))  # the installed console script
    command = [journeys, "emit", str(source), "--topic", unique_name]
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, timeout=300)

    assert done.returncode == 1, done.stderr.decode()  # rejected lines make the exit non-zero
    summary = json.loads(done.stdout)
    expected_reasons = Counter(BAD_LINES[(n // 37) % len(BAD_LINES)][0] for n in bad_numbers)
    assert (summary["valid"], summary["sent"], summary["failed"]) == (len(valid), len(valid), 0)
    assert summary["rejected"] == len(bad_numbers) == 10_000 - len(valid)
    assert summary["rejected_by_reason"] == dict(expected_reasons)
    assert [r["line"] for r in summary["first_rejections"]] == bad_numbers[:10]

    messages = read_back(bootstrap_servers, unique_name, expected=len(valid))
    assert sorted((m.key, m.value) for m in messages) == sorted(
        (expected_key(line), line) for line in valid
    )
    partitions_per_key: dict[bytes, set[int]] = {}
    for message in messages:
        partitions_per_key.setdefault(message.key, set()).add(message.partition)
    assert all(len(p) == 1 for p in partitions_per_key.values())
    assert len({m.partition for m in messages}) == 4


def test_emitter_validates_keys_and_reports(bootstrap_servers: str, unique_name: str) -> None:
    create_topic(bootstrap_servers, unique_name, partitions=1)
    touchpoint = Touchpoint(
        event_id="ev-tp",
        occurred_at=START,
        customer_id="cust-9",
        department="delivery",
        type="order_delayed",
        attributes={"order_id": "o-1"},
    )
    mapping = {
        "event_id": "ev-map",
        "occurred_at": START,
        "customer_id": "cust-9",
        "journey_id": "order-1",
        "department": "delivery",
        "type": "proactive_update",
    }
    naive = mapping | {"event_id": "ev-naive", "occurred_at": "2025-06-02T08:00:00"}
    with Emitter(bootstrap_servers, unique_name) as emitter:
        results = [emitter.emit(e) for e in (touchpoint, mapping, naive, b"[]")]
    report = emitter.report

    assert [type(r) for r in results] == [Touchpoint, Touchpoint, Rejection, Rejection]
    assert (report.accepted, report.sent, report.failed) == (2, 2, 0)
    assert report.refused == Counter({"naive_timestamp": 1, "not_object": 1})
    assert [(n, r.code) for n, r in report.first_refusals] == [
        (3, "naive_timestamp"),
        (4, "not_object"),
    ]
    assert report.summary() == "2 sent, 2 refused (naive_timestamp: 1, not_object: 1), 0 failed"
    messages = read_back(bootstrap_servers, unique_name, expected=2)
    assert [(m.key, json.loads(m.value)["event_id"]) for m in messages] == [
        (b"cust-9", "ev-tp"),
        (b"order-1", "ev-map"),
    ]


def test_dry_run_validates_and_sends_nothing(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    create_topic(bootstrap_servers, unique_name, partitions=1)
    source = tmp_path / "few.jsonl"
    source.write_bytes(b"\n".join(touchpoint_lines(20, bad_every=7)) + b"\n\n")
    env = {"JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}
    result = CliRunner().invoke(
        cli, ["emit", "--dry-run", str(source), "--topic", unique_name], env=env
    )

    assert result.exit_code == 1, result.output
    assert "dry run: 18 valid lines, nothing sent" in result.output
    assert "line 7: not_object: message: got array" in result.output
    assert "line 14: missing_field: occurred_at: absent" in result.output
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        partition = TopicPartition(unique_name, 0)
        assert consumer.end_offsets([partition]) == {partition: 0}
    finally:
        consumer.close()


def test_clean_file_exits_zero_from_stdin(bootstrap_servers: str, unique_name: str) -> None:
    create_topic(bootstrap_servers, unique_name, partitions=1)
    lines = touchpoint_lines(5, bad_every=10**6)
    env = {"JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}
    result = CliRunner().invoke(
        cli, ["emit", "-", "--topic", unique_name], input=b"\n".join(lines), env=env
    )
    assert result.exit_code == 0, result.output
    assert f"sent 5 of 5 valid lines to {unique_name}" in result.output
    assert "rejected: 0" in result.output
    assert len(read_back(bootstrap_servers, unique_name, expected=5)) == 5


def test_events_kafka_will_not_take_are_reported_as_failed(
    bootstrap_servers: str, unique_name: str
) -> None:
    lines = touchpoint_lines(3, bad_every=10**6)
    # The client will not write to the broker's internal topics: refused at send.
    with Emitter(bootstrap_servers, "__consumer_offsets") as internal_topic:
        results = [internal_topic.emit(line) for line in lines]
    # Over the broker's 1 MB message limit but allowed by this validator and producer:
    # the broker refuses it, so the failure arrives asynchronously through the errback.
    # (in 100 strings of 15,000 characters: one string may have at most 16,384)
    blobs = b"".join(b'"blob%d": "%s", ' % (n, b"x" * 15_000) for n in range(100))
    big = touchpoint_lines(1, bad_every=10**6)[0].replace(
        b'"attributes": {', b'"attributes": {' + blobs, 1
    )
    lenient = Validator(max_bytes=4_000_000)
    with Emitter(
        bootstrap_servers, unique_name, validator=lenient, max_request_size=4_000_000
    ) as too_big:
        assert isinstance(too_big.emit(big), Touchpoint)

    assert all(isinstance(r, Touchpoint) for r in results)
    report = internal_topic.report
    assert (report.accepted, report.sent, report.failed) == (3, 0, 3)
    assert report.summary() == "0 sent, 0 refused, 3 failed"
    assert [f.split(":")[0] for f in report.first_failures] == ["event 1", "event 2", "event 3"]
    assert (too_big.report.sent, too_big.report.failed) == (0, 1)
    assert "TooLarge" in too_big.report.first_failures[0]


def test_illegal_topic_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="no such topic!"):
        Emitter("127.0.0.1:1", "no such topic!")


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    source = tmp_path / "few.jsonl"
    source.write_bytes(b"\n".join(touchpoint_lines(40, bad_every=8)) + b"\n")
    journeys = str(Path(sys.executable).with_name("journeys"))
    terminal, terminal_side = pty.openpty()
    env = os.environ | {"TERM": "xterm", "COLUMNS": "120"}
    shown_parts: list[bytes] = []
    # Drain the terminal while the command runs, so a full buffer cannot block it.
    reader = threading.Thread(target=lambda: shown_parts.append(_read_all(terminal)))
    with subprocess.Popen(
        [journeys, "emit", "--dry-run", str(source)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal_side,
        env=env,
    ) as process:
        os.close(terminal_side)
        reader.start()
        summary, _ = process.communicate(timeout=120)
    reader.join(timeout=30)
    shown = b"".join(shown_parts)

    assert process.returncode == 1
    assert b"emitting" in shown and b"40 lines, 5 rejected" in shown
    assert b"emitting" not in summary  # stdout, the summary, carries no progress output
    assert summary.startswith(b"dry run: 35 valid lines, nothing sent")


def _read_all(descriptor: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:  # EIO: the other side of the terminal is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(descriptor)
    return b"".join(chunks)


def unreachable_emit(
    tmp_path: Path, **settings: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    from pipeline.kafka.local import free_port

    source = tmp_path / "one.jsonl"
    source.write_bytes(touchpoint_lines(1, bad_every=10**6)[0] + b"\n")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = os.environ | {"JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": address} | settings
    journeys = str(Path(sys.executable).with_name("journeys"))
    started = time.monotonic()
    done = subprocess.run(
        [journeys, "emit", str(source)], capture_output=True, text=True, env=env, timeout=120
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"cannot reach Kafka at {address} within" in done.stderr
    return elapsed, done


def test_unreachable_kafka_is_said_within_seconds_naming_the_address(tmp_path: Path) -> None:
    elapsed, done = unreachable_emit(tmp_path)
    assert elapsed < 12, f"took {elapsed:.1f} s: {done.stderr}"
    assert "within 5 s (JOURNEYS_KAFKA_CONNECT_TIMEOUT_SECONDS)" in done.stderr
    quick, done = unreachable_emit(tmp_path, JOURNEYS_KAFKA_CONNECT_TIMEOUT_SECONDS="1")
    assert quick < elapsed - 2, (quick, elapsed)
    assert "within 1 s" in done.stderr
