"""Whatever the validator accepts, its rows, messages and state can be built and encoded.

The validator is the only gate: past it, a row that cannot be built or encoded stalls the
worker on that message for ever (a few hundred levels of nesting crashed orjson, an integer
beyond 64 bits crashed it too). Hypothesis generates events in and beyond the contract's
bounds (deep and wide attributes, numbers past 64 bits, odd unicode, dates from 1900 to the
clock); for every one the validator accepts, the processor's rows must encode as the sink's
insert body (one JSON array, read as ClickHouse JSONEachRow), its score and alert messages
must be JSON, and the journey state must round trip. Rejected ones must give a dead-letter
row that encodes too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.contract import Rejection, Touchpoint, Validator, bounds
from pipeline.contract.rules import ATTRIBUTE_RULES
from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES
from pipeline.journey import JourneyBook
from pipeline.journey.events import to_us
from pipeline.store import json_array_rows
from pipeline.stream.processor import Inbound
from tests.support.stream_messages import NOW, processor

VALIDATOR = Validator(max_bytes=1 << 20)  # the size limit is not what is tested here

# Odd unicode: controls, NUL, line separators, combining marks, astral emoji, RTL marks.
ODD = st.sampled_from(["\x00", "\u2028", "\u0301", "\U0001f600", "\u202e", "\ufeff", "\\", '"'])
TEXT = st.text(st.characters(exclude_categories=["Cs"]) | ODD, max_size=12)
IDENTIFIERS = st.text(st.characters(exclude_categories=["Cs"]) | ODD, min_size=1, max_size=127)
IN_RANGE = st.integers(bounds.INT_MIN, bounds.INT_MAX) | st.floats(-9.2e18, 9.2e18)
BEYOND = st.sampled_from([bounds.INT_MAX + 1, 2**64, -(2**70), 1e19, 1.7976931348623157e308])
EDGES = st.sampled_from([bounds.INT_MAX, bounds.INT_MIN, 5e-324, -0.0, float(2**63 - 1024)])
NUMBERS = st.one_of(IN_RANGE, IN_RANGE, IN_RANGE, EDGES, BEYOND)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _nested(depth: int, leaf: Any) -> Any:
    for level in range(depth):
        leaf = [leaf, 1] if level % 2 else {"k": leaf, "é": None}
    return leaf


DEEP = st.builds(_nested, st.integers(0, bounds.MAX_DEPTH + 2), SCALARS)
WIDE = st.integers(0, bounds.MAX_ITEMS + 1).map(lambda n: {str(i): i for i in range(n)})
LONG = st.sampled_from([bounds.MAX_STRING, bounds.MAX_STRING + 1]).map(lambda n: "\U0001f600" * n)
ATTRIBUTE_VALUES = st.one_of(JSON_VALUES, DEEP, WIDE, LONG)


@st.composite
def moments(draw: st.DrawFn) -> str:
    """occurred_at from just before 1900 to just past the clock, with odd offsets."""
    span = int((NOW - datetime(1899, 12, 30, tzinfo=UTC)).total_seconds())
    # Seconds back from the clock: near it (live traffic), anywhere, or near 1900.
    back = draw(st.integers(-600, span) | st.integers(span - 4 * 86_400, span))
    moment = NOW - timedelta(seconds=back, microseconds=draw(st.integers(0, 999_999)))
    offset = timedelta(minutes=draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
    local = moment.astimezone(timezone(offset))
    return local.isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds"])))


# Timestamps in attributes (due_at) are any real date: the calendar's edges included.
EDGE_TIMES = st.sampled_from(
    ["0001-01-01T00:00:00Z", "0001-01-01T23:59:59-23:59", "9999-12-31T23:59:59.999999Z"]
)
REQUIRED_VALUES = {
    "id": IDENTIFIERS,
    "slug": st.just("billing"),
    "timestamp": moments() | EDGE_TIMES,
}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    attributes = draw(st.dictionaries(TEXT, ATTRIBUTE_VALUES, max_size=3))
    for rule in ATTRIBUTE_RULES[event_type]:
        if rule.required:
            attributes[rule.name] = draw(REQUIRED_VALUES[rule.kind])
    if event_type == "survey_response":
        attributes["nps"] = draw(st.integers(0, 10))
    # Journey and customer ids apart: a journey_id equal to a customer-keyed journey's
    # customer_id is a known poison pill of the processor (its book key collides), not a
    # row-building one.
    document = {
        "event_id": draw(IDENTIFIERS),
        "occurred_at": draw(moments()),
        "customer_id": "C" + draw(IDENTIFIERS),
        "department": draw(st.sampled_from(["billing", "customer_service", "x" * 64])),
        "type": event_type,
        "channel": draw(st.sampled_from([*CHANNELS, None])),
        "attributes": attributes,
    }
    if draw(st.booleans()):
        document["journey_id"] = "J" + draw(IDENTIFIERS)
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents(), min_size=1, max_size=3), st.booleans())
def test_what_the_validator_accepts_can_be_stored(
    batch: list[dict[str, Any]], ascii_only: bool
) -> None:
    raws = [json.dumps(d, ensure_ascii=ascii_only).encode() for d in batch]
    verdicts = [VALIDATOR.validate(raw, now=NOW) for raw in raws]
    event(f"accepted {sum(isinstance(v, Touchpoint) for v in verdicts)} of {len(raws)}")
    # A horizon of 200 years: every promise alerts, so its alert message is encoded too.
    p = processor(validator=VALIDATOR, alert_horizon_s=200 * 365 * 24 * 3600)
    out = p.process(0, [Inbound("touchpoints", 0, n, raw) for n, raw in enumerate(raws)], NOW)
    accepted = [v for v in verdicts if isinstance(v, Touchpoint)]
    for row in out.rows.get("touchpoints", []):
        # Usually the first one sent; an id re-used after its journey was retired and its
        # de-dup window passed is a new event (the engine no longer knows the old one).
        sent = [t.attributes for t in accepted if t.event_id == row["event_id"]]
        assert orjson.loads(row["attributes"]) in sent
    # A year later every deadline has fired: those rows must encode too.
    later = NOW + timedelta(days=400)
    tick = Inbound("touchpoints.routed", 0, len(raws), b"", tick_us=to_us(later))
    for output in (out, p.process(0, [tick], later)):
        for table, rows in output.rows.items():
            assert len(orjson.loads(json_array_rows(rows))) == len(rows), table
        for _, payload in output.scores + output.alerts:
            orjson.loads(payload)
    _, books = p.books.snapshot([0])
    for key, state in books[0].items():
        assert JourneyBook.from_bytes(state).to_bytes() == state, key
    accounted = p.metrics.counts["accepted"] + p.metrics.counts["rejected"]
    assert accounted == len(raws)
    assert len(out.rows.get("dead_letters", [])) == sum(isinstance(v, Rejection) for v in verdicts)
