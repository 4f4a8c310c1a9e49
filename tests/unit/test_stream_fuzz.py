"""Fuzz: no message, whatever its bytes, key, headers or value, can stop the worker.

Hypothesis generates fetches of hostile and ordinary messages: random bytes, tombstones,
JSON nested thousands of levels deep (at the top and in attributes), wide objects, numbers
past 64 bits and past any float, odd unicode (NUL, escaped lone surrogates, line
separators), the calendar's edges, ids that collide with other ids or with the state
table's own keys, valid touchpoints with promises and deadlines, and idle ticks with odd
values on the routed topic. They go through the worker's real path between checkpoints:
`Runtime.handle` (slicing, the processor, the buffers, the dead letters it would send).

After every fetch: received = accepted + rejected, received is the number of touchpoint
messages delivered, nothing raised inside (no processing failure, no rewind, no stop),
every buffered row encodes for ClickHouse and every message is bytes for Kafka, and the
fetch took bounded time (an alarm ends one that spins: year 0001 once pinned the loop).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.contract import EVENT_TYPES
from pipeline.store import json_each_row
from tests.support.runtime_rig import ROUTED, TOPIC, RuntimeRig, record

NOW = datetime.now(UTC)
SECONDS_PER_FETCH = 5.0  # a fetch holds at most 8 messages; each takes milliseconds


class Spinning(BaseException):  # not an Exception: the runtime must not catch it
    pass


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    def ring(signum: int, frame: FrameType | None) -> None:
        raise Spinning(f"a fetch took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- values -------------------------------------------------------------------------------
ODD_TEXT = st.sampled_from(
    ["", "\x00", "\x00clock:0", "\x00customer:C1", "\x00journey:J1", "C1", "J1", "\u2028",
     "\u202e", "é", "\U0001f600", "x" * 200]
)  # fmt: skip
IDS = st.sampled_from(["C1", "C2", "J1", "J2"]) | ODD_TEXT | st.text(max_size=12)
TIMES = st.sampled_from([
    "0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "1900-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z", "9999-12-31T23:59:59Z", "2026-02-30T10:00:00Z",
    "2026-03-01T10:00:00", "yesterday",
]) | st.integers(-3000, 30).map(lambda days: (NOW + timedelta(days=days)).isoformat())  # fmt: skip
NUMBERS = st.sampled_from(["1e400", "-1e400", str(2**63), str(2**64), str(-(2**63) - 1),
                           "1" * 40, "0.0000001", "-0", "1E308"])  # fmt: skip


def deep(levels: int, leaf: str = "1") -> str:
    return "[" * levels + leaf + "]" * levels


def wide(items: int) -> str:
    return "{" + ",".join(f'"k{i}":{i}' for i in range(items)) + "}"


ATTRIBUTE_TEXT = st.one_of(
    st.just("{}"),
    st.integers(1, 4000).map(lambda n: '{"a": ' + deep(n) + "}"),
    st.integers(0, 1100).map(wide),
    NUMBERS.map(lambda n: '{"amount": ' + n + ', "n": [' + n + "]}"),
    TIMES.map(lambda t: json.dumps({"promise_id": "p1", "due_at": t})),
    st.just('{"s": "\\ud800", "t": "\\udfff\\u0000"}'),
    st.just('{"promise_id": "p1", "due_at": "' + (NOW + timedelta(hours=2)).isoformat() + '"}'),
    st.text(max_size=20).map(lambda t: json.dumps({"reason": t, "resolved": True})),
)


RECENT = st.integers(-60 * 24 * 90, 5).map(lambda minutes: NOW + timedelta(minutes=minutes))
VALID_ATTRIBUTES = {
    "contact": st.fixed_dictionaries({}, optional={"resolved": st.booleans(),
                                                   "wait_seconds": st.integers(0, 5000)}),
    "promise_made": st.fixed_dictionaries({
        "promise_id": st.sampled_from(["p1", "p2"]),
        "due_at": st.integers(-500, 500).map(lambda h: (NOW + timedelta(hours=h)).isoformat()),
    }),
    "promise_kept": st.fixed_dictionaries({"promise_id": st.sampled_from(["p1", "p2"])}),
    "feedback_received": st.fixed_dictionaries({"feedback_id": st.just("f1")}),
    "case_opened": st.fixed_dictionaries({"case_id": st.just("k1")}),
    "journey_closed": st.just({}),
    "rework": st.just({"reason": "again", "deep": json.loads(deep(28)), "n": -(2**63)}),
}  # fmt: skip


@st.composite
def touchpoint_text(draw: st.DrawFn) -> bytes:
    """A touchpoint-like JSON object: valid, or broken in one or more fields (written as
    text, so that depths and numbers no encoder would write can be written)."""
    kind = draw(st.sampled_from(sorted(VALID_ATTRIBUTES)))
    fields = {
        "event_id": json.dumps(draw(st.sampled_from(["e1", "e2", "e3", "e4"]) | IDS)),
        "occurred_at": json.dumps(draw(RECENT).isoformat()),
        "customer_id": json.dumps(draw(st.sampled_from(["C1", "C2", "J1"]) | IDS)),
        "department": json.dumps(draw(st.sampled_from(["sales", "billing"]))),
        "type": json.dumps(kind),
        "attributes": json.dumps(draw(VALID_ATTRIBUTES[kind])),
    }
    if draw(st.booleans()):
        fields["journey_id"] = json.dumps(draw(st.sampled_from(["J1", "C1"]) | IDS))
    if draw(st.booleans()):  # hostile in one or two places
        hostile = {
            "occurred_at": TIMES.map(json.dumps),
            "attributes": ATTRIBUTE_TEXT,
            "department": st.sampled_from(['"Bad Dept"', '""']),
            "type": st.sampled_from(['"x"', *[json.dumps(t) for t in EVENT_TYPES]]),
        }
        for name in draw(st.lists(st.sampled_from(sorted(hostile)), min_size=1, max_size=2)):
            fields[name] = draw(hostile[name])
        for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=1)):
            fields[name] = draw(st.sampled_from(["null", "1", deep(50), "{}", "[]"]))
    body = "{" + ",".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    return body.encode("utf-8", "surrogatepass")


VALUES = st.one_of(
    touchpoint_text(),
    touchpoint_text(),
    touchpoint_text(),
    touchpoint_text(),
    st.none(),  # a tombstone
    st.binary(max_size=64),
    st.integers(1, 5000).map(lambda n: deep(n).encode()),  # deep at the top level
    st.integers(1, 5000).map(lambda n: ("{" + '"a":{' * n + "}" * n + "}").encode()),
    st.sampled_from([b"", b"null", b"[]", b"\xff\xfe", b'{"event_id": 1e400}', b"\x00" * 8]),
)
TICK_VALUES = st.sampled_from([b"1700000000000000", b"-5", b"abc", b"99999999999999999999",
                               b"253402300799999999", b"", None])  # fmt: skip
KEYS = st.none() | st.binary(max_size=12) | st.sampled_from([b"C1", b"J1", b"\x00tick"])
HEADERS = st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=16)), max_size=3)


@st.composite
def fetches(draw: st.DrawFn) -> list[list[Any]]:
    """One to three fetches over two partitions of the touchpoints and routed topics."""
    offsets: dict[tuple[str, int], int] = {}
    result = []
    for _ in range(draw(st.integers(1, 3))):
        fetch = []
        for _ in range(draw(st.integers(1, 8))):
            routed = draw(st.integers(0, 5)) == 0
            topic, partition = (ROUTED if routed else TOPIC), draw(st.integers(0, 1))
            key = b"\x00tick" if routed and draw(st.booleans()) else draw(KEYS)
            value = draw(TICK_VALUES) if key == b"\x00tick" else draw(VALUES)
            offset = offsets.get((topic, partition), 0)
            offsets[(topic, partition)] = offset + 1
            fetch.append(record(topic, partition, offset, value, key, draw(HEADERS)))
        result.append(fetch)
    return result


# The factory makes a fresh runtime per example; the health check cannot know.
UNCHECKED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]


@settings(max_examples=120, deadline=None, suppress_health_check=UNCHECKED)
@given(fetches())
def test_no_message_stops_the_worker_and_every_message_is_counted_once(
    runtime_factory: Callable[..., RuntimeRig], fetches: list[list[Any]]
) -> None:
    rig = runtime_factory(partitions=2)
    delivered, forwarded = 0, 0
    for fetch in [*fetches, []]:
        # What the checkpoint would send to the routed topic comes back in the next fetch.
        rerouted = [m for b in rig.runtime.sink._batches.values() for m in b.messages
                    if m.topic == ROUTED][forwarded:]  # fmt: skip
        forwarded += len(rerouted)
        fetch = fetch + [record(ROUTED, m.partition, 1000 + forwarded + i, m.value, m.key)
                         for i, m in enumerate(rerouted)]  # fmt: skip
        if not fetch:
            continue
        started = time.monotonic()
        with alarm(SECONDS_PER_FETCH):
            rig.deliver(fetch)
        assert time.monotonic() - started < 0.5 * len(fetch), "slow: over 0.5 s a message"
        delivered += sum(1 for r in fetch if r.topic == TOPIC)
        counts = rig.metrics.counts
        assert counts["processing_failures"] == 0 and not rig.rewinds, "something raised"
        assert not rig.runtime.failed
        assert counts["received"] == delivered == counts["accepted"] + counts["rejected"]
        assert_buffers_encode(rig)
    for code in rig.metrics.rejected_by_code:
        event(f"rejected: {code}")
    for name in ("accepted", "rerouted", "routed_in", "ticks", "signals", "duplicates",
                 "routed_rejected"):  # fmt: skip
        event(f"{name}: {'some' if rig.metrics.counts[name] else 'none'}")


def assert_buffers_encode(rig: RuntimeRig) -> None:
    for batch in rig.runtime.sink._batches.values():
        for rows in batch.rows.values():
            json_each_row(rows)
        for message in batch.messages:
            assert isinstance(message.value, bytes)
            assert message.key is None or isinstance(message.key, bytes)
            assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in message.headers)
        assert all(isinstance(k, bytes) for k in batch.scores)
