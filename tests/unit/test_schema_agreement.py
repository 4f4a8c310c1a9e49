"""The published JSON Schema and the package's validator give the same verdict.

Departments validate against the schema; the worker validates with `pipeline.contract`. If
they disagreed, a department could pass its own checks and still see its events rejected
(or the reverse). Hypothesis generates valid documents and mutates them into (mostly)
invalid ones; both sides must agree on every one, and so must the validator's reference
path, which names the reasons.

Rules the schema cannot express, kept out of the generated documents on purpose (and stated
in docs/departments.md): the future-timestamp tolerance (the clock is pinned far ahead of
every generated timestamp), the size limit (documents stay under 64 KiB), calendar validity
such as 2024-02-30 (days stop at 28), years before 0001 in UTC and the earliest occurred_at
compared in UTC rather than as written (no generated time lies within a day of 1900-01-01),
and Python's `$` matching before a final newline (generated strings contain no newline).

The bounds of 1-0-1 (nesting depth, 64-bit numbers, string, key and array sizes, years
from 1900) are generated at and just past each limit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.contract import Touchpoint, Validator, bounds
from pipeline.contract.diagnose import diagnose
from pipeline.contract.rules import ATTRIBUTE_RULES, CONTRACT_FIELDS, REQUIRED_FIELDS
from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES

SCHEMA_PATH = Path(__file__).parents[2] / "schemas/io.journeys/touchpoint/jsonschema/1-0-1"
SCHEMA = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
PINNED_NOW = datetime(2100, 1, 1, tzinfo=UTC)  # after every generated timestamp
VALIDATOR = Validator()
EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

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


def _nested(depth: int, leaf: Any) -> Any:
    """`leaf` inside `depth` arrays and objects, alternating."""
    for level in range(depth):
        leaf = [leaf] if level % 2 else {"k": leaf}
    return leaf


# Values at and just past each bound of 1-0-1, for an attribute (the attributes object is
# level 2 of nesting, so a value nested 30 levels deep reaches the limit of 32).
AT_THE_BOUNDS = st.one_of(
    st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30, 9.2e18, 9.3e18, 1e19,
                     float(2**63), float(-(2**63)), 1e308, -1e308]),
    st.builds(_nested, st.integers(bounds.MAX_DEPTH - 4, bounds.MAX_DEPTH + 2), NUMBERS),
    st.sampled_from([bounds.MAX_STRING, bounds.MAX_STRING + 1]).map(lambda n: "x" * n),
    st.sampled_from([bounds.MAX_KEY, bounds.MAX_KEY + 1]).map(lambda n: {"k" * n: 1}),
    st.sampled_from([bounds.MAX_ITEMS, bounds.MAX_ITEMS + 1]).map(lambda n: [0] * n),
    st.sampled_from([bounds.MAX_ITEMS, bounds.MAX_ITEMS + 1]).map(
        lambda n: {str(i): 0 for i in range(n)}
    ),
    st.builds(lambda v: [1, {"x": v}], st.sampled_from([2**63, "x" * (bounds.MAX_STRING + 1)])),
)  # fmt: skip


BAD_TIMESTAMPS = st.sampled_from(
    ["2024-05-01T09:30:00", "2024-05-01 09:30:00Z", "2024-05-01T09:30Z", "2024-05-01",
     "2024-05-01T09:30:00+0200", "2024-05-01T09:30:00.Z", "2024-13-01T09:30:00Z",
     "2024-05-01T24:00:00Z", "2024-05-01T09:30:60Z", "2024-05-01T09:30:00+24:00",
     "2024-05-01T09:30:00 +02:00", "2024-05-01T09:30:00+02", "1714555800", "tomorrow"]
)  # fmt: skip
BAD_SLUGS = st.sampled_from(["", "Sales", "9lives", "_x", "a-b", "a b", "é", "a" * 65]) | TEXT


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with one thing changed; most are invalid, a few stay valid."""
    document = draw(valid_documents())
    event_type = document["type"]
    mutation = draw(st.integers(0, 13))
    if mutation == 0:
        del document[draw(st.sampled_from(REQUIRED_FIELDS))]
    elif mutation == 1:
        document[draw(st.sampled_from(CONTRACT_FIELDS))] = draw(JSON_VALUES)
    elif mutation == 2:
        name = draw(st.sampled_from(["event_id", "customer_id", "journey_id"]))
        document[name] = draw(st.sampled_from(["", "x" * 129, "é" * 200]))
    elif mutation == 3:
        document[draw(st.sampled_from(["department", "stage"]))] = draw(BAD_SLUGS)
    elif mutation == 4:
        document["type"] = draw(TEXT | st.sampled_from(["Contact", "promise", "survey"]))
    elif mutation == 5:
        document["occurred_at"] = draw(BAD_TIMESTAMPS | TEXT)
    elif mutation == 6:
        document["channel"] = draw(TEXT | st.sampled_from(["Phone", "sms", ""]))
    elif mutation == 7:
        document[draw(TEXT.filter(lambda k: k not in CONTRACT_FIELDS))] = draw(JSON_VALUES)
    elif mutation == 8:
        document["schema_version"] = draw(st.integers(-3, 3) | st.sampled_from([2.0, 1.5, "1"]))
    elif mutation == 9:
        document["occurred_at"] = draw(timestamps(st.integers(1, 1699)))  # before 1900
    elif mutation == 10:
        names = {rule.name for rule in ATTRIBUTE_RULES[event_type]}
        key = draw(TEXT.filter(lambda k: k not in names))
        document.setdefault("attributes", {})[key] = draw(AT_THE_BOUNDS)
    else:
        _mutate_attributes(draw, document, event_type)
    return document


def _mutate_attributes(draw: st.DrawFn, document: dict[str, Any], event_type: str) -> None:
    attributes = document.setdefault("attributes", {})
    if not isinstance(attributes, dict):
        return
    names = [rule.name for rule in ATTRIBUTE_RULES[event_type]]
    if not names:
        document["attributes"] = draw(JSON_VALUES)
        return
    name = draw(st.sampled_from(names))
    if draw(st.booleans()):
        attributes.pop(name, None)
        if event_type == "survey_response" and draw(st.booleans()):
            attributes.clear()
    else:
        attributes[name] = draw(JSON_VALUES | BAD_TIMESTAMPS | BAD_SLUGS)


def _verdicts(document: dict[str, Any], ascii_only: bool) -> tuple[bool, bool, bool]:
    raw = json.dumps(document, ensure_ascii=ascii_only).encode()
    by_schema = SCHEMA.is_valid(document)
    by_validator = isinstance(VALIDATOR.validate(raw, now=PINNED_NOW), Touchpoint)
    by_reference = isinstance(diagnose(raw, VALIDATOR.horizon(PINNED_NOW)), Touchpoint)
    return by_schema, by_validator, by_reference


@EXAMPLES
@given(valid_documents(), st.booleans())
def test_valid_documents_pass_schema_and_validator(
    document: dict[str, Any], ascii_only: bool
) -> None:
    assert _verdicts(document, ascii_only) == (True, True, True), document


@EXAMPLES
@given(mutated_documents(), st.booleans())
def test_schema_and_validator_agree_on_mutated_documents(
    document: dict[str, Any], ascii_only: bool
) -> None:
    by_schema, by_validator, by_reference = _verdicts(document, ascii_only)
    event("valid" if by_schema else "invalid")
    assert by_schema == by_validator == by_reference, (document, by_schema, by_validator)


ANY_FIELDS = st.sampled_from(CONTRACT_FIELDS) | TEXT


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ANY_FIELDS, JSON_VALUES | timestamps() | SLUGS, max_size=8))
def test_schema_and_validator_agree_on_arbitrary_objects(document: dict[str, Any]) -> None:
    by_schema, by_validator, by_reference = _verdicts(document, ascii_only=False)
    assert by_schema == by_validator == by_reference, document
