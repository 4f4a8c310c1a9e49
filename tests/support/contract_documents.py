"""Touchpoint documents as departments send them, generated (hypothesis), and the published
JSON Schema they are checked against.

`valid_documents` draws documents that both the schema and the package's validator accept;
tests mutate them into (mostly) invalid ones. Rules the schema cannot express are kept out
of them on purpose (and stated in docs/departments.md): the future-timestamp tolerance
(check them with `PINNED_NOW`, far ahead of every generated timestamp), the size limit
(documents stay under 64 KiB), calendar validity such as 2024-02-30 (days stop at 28),
years before 0001 in UTC and the earliest occurred_at compared in UTC rather than as
written (no generated time lies within a day of 1900-01-01), and Python's `$` matching
before a final newline (generated strings contain no newline).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import strategies as st

from pipeline.contract import Validator
from pipeline.contract.rules import ATTRIBUTE_RULES
from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES

SCHEMA_PATH = Path(__file__).parents[2] / "schemas/io.journeys/touchpoint/jsonschema/1-0-1"
SCHEMA = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
PINNED_NOW = datetime(2100, 1, 1, tzinfo=UTC)  # after every generated timestamp
VALIDATOR = Validator()

CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\n")
TEXT = st.text(CHARACTERS, max_size=16)
IDENTIFIERS = st.one_of(
    st.text(CHARACTERS, min_size=1, max_size=12),
    st.text("abc-_0", min_size=120, max_size=128),
)
SLUGS = st.builds(
    str.__add__,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_", max_size=63),
)
NUMBERS = st.integers(-(2**63), 2**63 - 1) | st.floats(-9e18, 9e18)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def timestamps(draw: st.DrawFn, first_years: st.SearchStrategy[int] | None = None) -> str:
    # Seconds since 1900-01-02 with days capped at 28 of each month: every combination is
    # real, and no offset takes one before 1900 in UTC.
    moment = draw(st.integers(86400, 200 * 12 * 28 * 86400 - 1))
    days, second_of_day = divmod(moment, 86400)
    months, day = divmod(days, 28)
    year, month = divmod(months, 12)
    minute_of_day, second = divmod(second_of_day, 60)
    first = 1900 if first_years is None else draw(first_years)
    date = f"{first + year:04d}-{month + 1:02d}-{day + 1:02d}"
    time = f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}:{second:02d}"
    fraction = draw(st.sampled_from(["", ".5", ".123", ".123456", ".123456789"]))
    offset_minutes = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    sign, (hours, minutes) = "+-"[offset_minutes < 0], divmod(abs(offset_minutes), 60)
    offset = draw(st.sampled_from(["Z", "z", f"{sign}{hours:02d}:{minutes:02d}"]))
    return date + draw(st.sampled_from("Tt")) + time + fraction + offset


def _integral(low: int, high: int) -> st.SearchStrategy[Any]:
    return st.integers(low, high) | st.integers(low, high).map(float)


VALID_ATTRIBUTE: dict[str, st.SearchStrategy[Any]] = {
    "id": IDENTIFIERS,
    "slug": SLUGS,
    "text": TEXT,
    "bool": st.booleans(),
    "seconds": st.integers(0, 10**6) | st.floats(0, 1e6),
    "number": NUMBERS,
    "timestamp": timestamps(),
    "sentiment": st.floats(-1, 1) | st.sampled_from([-1, 0, 1]),
    "csat": _integral(1, 5),
    "nps": _integral(0, 10),
    "ces": _integral(1, 7),
}


@st.composite
def attributes_for(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    rules = ATTRIBUTE_RULES[event_type]
    names = {rule.name for rule in rules}
    attributes = draw(
        st.dictionaries(TEXT.filter(lambda k: k not in names), JSON_VALUES, max_size=2)
    )
    for rule in rules:
        if rule.required or draw(st.booleans()):
            attributes[rule.name] = draw(VALID_ATTRIBUTE[rule.kind])
    if event_type == "survey_response" and not names & attributes.keys():
        attributes["nps"] = draw(VALID_ATTRIBUTE["nps"])
    return attributes


def _optional(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Absent (the sentinel None is dropped below), null, or a value."""
    return st.sampled_from([_ABSENT, None]) | value


_ABSENT = object()


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    document = {
        "event_id": draw(IDENTIFIERS),
        "occurred_at": draw(timestamps()),
        "customer_id": draw(IDENTIFIERS),
        "department": draw(SLUGS),
        "type": event_type,
        "journey_id": draw(_optional(IDENTIFIERS)),
        "stage": draw(_optional(SLUGS)),
        "channel": draw(_optional(st.sampled_from(CHANNELS))),
        "attributes": draw(attributes_for(event_type)),
        "schema_version": draw(st.sampled_from([_ABSENT, 1, 1.0])),
    }
    if not document["attributes"] and draw(st.booleans()):
        document["attributes"] = _ABSENT
    return {name: value for name, value in document.items() if value is not _ABSENT}


def invoice(**changes: Any) -> bytes:
    """One valid document as billing sends it, with `changes` applied, as raw JSON."""
    document = {"event_id": "ev-1", "occurred_at": "2025-06-03T10:17:00+02:00",
                "customer_id": "C-1", "department": "billing", "type": "invoice_issued",
                "attributes": {"invoice_id": "I-1", "amount": 12.5}} | changes  # fmt: skip
    return json.dumps(document).encode()
