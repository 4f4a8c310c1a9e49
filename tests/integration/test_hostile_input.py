"""Hostile input on the real broker: one message of each class that once stopped the worker.

Issue 15's hostile-input run found messages that stalled or stopped the pipeline for every
department: a tombstone, nesting thousands of levels deep (at the top level and inside
attributes), integers past 64 bits in attributes, an occurred_at in year 0001, a message
just under the broker's size limit (its dead letter did not fit the dead-letter topic), and
a batch spanning more than a hundred months (ClickHouse refused the insert). One of each,
then a backfill and ordinary traffic, through a running worker: every bad one is a dead
letter with its code, the good ones are stored within seconds, the worker keeps running,
and received = accepted + rejected.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from pipeline.contract import Touchpoint
from tests.support.kafka import consume, create_topic
from tests.support.scripted_journeys import (
    QUERIES,
    as_messages,
    assert_matches_engine,
    scripted_touchpoints,
)
from tests.support.worker_process import WorkerProcess, worker_env

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)
STORED_WITHIN_SECONDS = 30.0  # generous: two cores, shared with other tests
PARTITIONS = 3


def document(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "bad", "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
        "customer_id": "C-bad", "department": "billing", "type": "invoice_issued",
        "attributes": {},
    }  # fmt: skip
    return base | changes


def raw(doc: dict[str, object], attributes_text: str | None = None) -> bytes:
    text = json.dumps(doc)
    if attributes_text is not None:  # depths and numbers json.dumps would not write
        text = text.replace('"attributes": {}', f'"attributes": {attributes_text}')
    return text.encode()


# Just under the broker's limit (message.max.bytes, 1,048,588 bytes a record batch): with a
# reason in headers its dead letter is over it.
HUGE_BYTES = 1_048_400
_FRAME = raw(document(event_id="huge", attributes={"note": ""}))
HUGE = raw(document(event_id="huge", attributes={"note": "x" * (HUGE_BYTES - len(_FRAME))}))
BAD: list[tuple[str, bytes | None]] = [
    ("tombstone", None),
    ("too_deep", b"[" * 5000 + b"]" * 5000),
    ("too_deep", raw(document(event_id="deep-attr"), '{"a": ' + "[" * 300 + "1" + "]" * 300 + "}")),
    ("too_deep", raw(document(event_id="deeper"), '{"a": ' + "[" * 5000 + "]" * 5000 + "}")),
    ("number_out_of_range", raw(document(event_id="big-int"), '{"amount": ' + "9" * 30 + "}")),
    ("early_timestamp", raw(document(event_id="year-1", occurred_at="0001-01-01T00:00:00Z"))),
    ("too_large", HUGE),
]


def backfill(months: int) -> list[Touchpoint]:
    """One order a month for `months` months back: one flush spans that many partitions."""
    return [
        Touchpoint(
            event_id=f"old-{n}",
            occurred_at=NOW - timedelta(days=31 * n + 2),
            customer_id=f"C-old-{n}",
            journey_id=f"ORD-old-{n}",
            department="sales",
            type="order_placed",
            attributes={"order_id": f"ORD-old-{n}"},
        )
        for n in range(1, months + 1)
    ]


def test_one_message_of_each_class_then_good_traffic_is_stored_within_seconds(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    assert len(HUGE) == HUGE_BYTES
    old = backfill(150)
    good = scripted_touchpoints(40, seed=21)
    create_topic(bootstrap_servers, unique_name, PARTITIONS)
    env = worker_env(tmp_path, bootstrap_servers, unique_name, "hostile", PARTITIONS)
    run = WorkerProcess(env, tmp_path / "hostile.log")
    run.start()
    try:
        run.wait_for(run.caught_up, 90, "assigned and caught up")
        producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all",
                                 max_request_size=1_048_588)  # the broker's limit  # fmt: skip
        for _, value in BAD:
            producer.send(unique_name, key=b"C-bad", value=value)
        for key, value in as_messages(old) + as_messages(good):
            producer.send(unique_name, key=key, value=value)
        producer.flush()
        producer.close()
        sent_at = time.monotonic()
        total = len(BAD) + len(old) + len(good)
        final = run.wait_for(
            lambda m: m["received"] == total and m["buffered_rows"] == 0 and m["flushes"] >= 1,
            STORED_WITHIN_SECONDS, "everything received and stored",
        )  # fmt: skip
        stored_after = time.monotonic() - sent_at
        assert run.process is not None and run.process.poll() is None  # still running
    finally:
        run.stop()
    assert stored_after < STORED_WITHIN_SECONDS
    assert final["received"] == total == final["accepted"] + final["rejected"]
    assert final["rejected"] == len(BAD) and final["processing_failures"] == 0
    dump = run.dump(QUERIES)
    letters = dump["dead_letters"]
    assert [row["reason_code"] for row in letters] == [code for code, _ in BAD]
    assert letters[0]["raw"] == ""  # the tombstone: no bytes at all
    assert letters[-1]["raw"] == HUGE.decode()  # the table keeps the whole payload
    assert_matches_engine(dump, old + good)
    assert dump["touchpoint_rows"][0]["n"] == len(old) + len(good)
    sizes = run.dump({"sizes": "SELECT raw_size, raw_sha256 FROM dead_letters FINAL"
                      " WHERE reason_code = 'too_large'"})["sizes"]  # fmt: skip
    assert sizes == [{"raw_size": len(HUGE), "raw_sha256": hashlib.sha256(HUGE).hexdigest()}]
    # The dead-letter topic's copy of the huge one is cut to fit, and says so.
    topic_letters = consume(bootstrap_servers, run.env["JOURNEYS_TOPIC_DEAD_LETTERS"])
    (cut,) = [r for r in topic_letters if dict(r.headers)["reason_code"] == b"too_large"]
    headers = dict(cut.headers)
    assert headers["raw_truncated"] == b"1" and headers["raw_size"] == str(len(HUGE)).encode()
    assert HUGE.startswith(cut.value) and len(cut.value) < len(HUGE)
    assert sorted(dict(r.headers)["reason_code"].decode() for r in topic_letters) == sorted(
        code for code, _ in BAD
    )
