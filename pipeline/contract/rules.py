"""The rules of the event contract, version 1, as cheap predicates.

The JSON Schema in `schemas/io.journeys/touchpoint/jsonschema/1-0-1` is the authority that
departments code against; these predicates say the same thing in a form the hot path can
afford (no regex per event). The property tests in tests/unit/test_schema_agreement.py
prove both give the same verdict, so a change here without the schema (or the reverse)
fails the build.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

CONTRACT_FIELDS: tuple[str, ...] = (
    "event_id", "occurred_at", "customer_id", "journey_id", "department", "type", "stage",
    "channel", "attributes", "schema_version",
)  # fmt: skip
REQUIRED_FIELDS: tuple[str, ...] = ("event_id", "occurred_at", "customer_id", "department", "type")
SCHEMA_VERSIONS: tuple[int, ...] = (1,)
MAX_IDENTIFIER = 128
MAX_SLUG = 64
SURVEY_ANSWERS: tuple[str, ...] = ("csat", "nps", "ces")

REJECTION_CODES: dict[str, str] = {
    "tombstone": "the record has no value at all (a Kafka tombstone: value null)",
    "too_large": "the message is bigger than the size limit (64 KiB by default)",
    "not_utf8": "the message bytes are not valid UTF-8",
    "not_json": "the message is not valid JSON",
    "not_object": "the message is JSON but not a JSON object",
    "too_deep": "arrays and objects nest deeper than 32 levels (the message itself is the first)",
    "unsupported_schema_version": "schema_version names a contract version this pipeline lacks",
    "missing_field": "a required field (event_id, occurred_at, customer_id, department, type) "
    "is absent",
    "wrong_type": "a field has the wrong JSON type (e.g. a number where a string is expected)",
    "empty_identifier": "an identifier (event_id, customer_id, journey_id) is an empty string",
    "identifier_too_long": "an identifier is longer than 128 characters",
    "bad_slug": "department or stage is not a slug: a-z first, then a-z, 0-9, _; 64 at most",
    "unknown_type": "type is not in the contract's event vocabulary",
    "unknown_channel": "channel is not one of the contract's channels",
    "naive_timestamp": "occurred_at has no UTC offset (naive timestamps are ambiguous)",
    "bad_timestamp": "occurred_at is not an RFC 3339 timestamp (or not a real date and time)",
    "future_timestamp": "occurred_at lies further in the future than the clock-skew tolerance",
    "early_timestamp": "occurred_at lies before the earliest accepted time (1900-01-01 by default)",
    "missing_attribute": "an attribute the event type requires is absent",
    "bad_attribute": "an attribute has the wrong type or is out of range",
    "number_out_of_range": "a number in attributes lies outside the signed 64-bit integer range",
    "string_too_long": "a string in attributes is over 16,384 characters (a key: over 128)",
    "too_many_items": "an array or object in attributes has more than 1,024 items",
    "unknown_field": "a top-level field the contract does not define (put extras in attributes)",
}

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_SLUG_REST = _LOWER + "0123456789_"
_DIGITS = "0123456789"
# Departments and stages are few; remembering the valid ones turns the slug check into one
# set lookup. Bounded so that a flood of distinct junk cannot grow it without limit.
KNOWN_SLUGS: set[str] = set()
KNOWN_SLUGS_MAX = 4096


def is_slug(value: str) -> bool:
    """`[a-z][a-z0-9_]{0,63}`, without a regex."""
    if value in KNOWN_SLUGS:
        return True
    ok = 0 < len(value) <= MAX_SLUG and value[0] in _LOWER and not value.strip(_SLUG_REST)
    if ok and len(KNOWN_SLUGS) < KNOWN_SLUGS_MAX:
        KNOWN_SLUGS.add(value)
    return ok


def readable_department(value: object) -> str:
    """The department a rejected payload names, for per-department counts of rejections.

    Kept even when it is not a valid slug ("Billing"): the department that misspelt its
    name is the one that needs to see these rejections. Empty when absent or unusable."""
    if type(value) is str and 0 < len(value) <= MAX_SLUG and value.isprintable():
        return value
    return ""


def is_integral(value: object) -> bool:
    # JSON Schema's "integer" includes 3.0, so the validator must too.
    return type(value) is int or (type(value) is float and value.is_integer())


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 timestamp with offset, as an aware datetime in UTC; None otherwise.

    Grammar: YYYY-MM-DD[Tt]hh:mm:ss[.fraction]([Zz]|[+-]hh:mm). Positional checks first,
    because `fromisoformat` alone accepts much more than RFC 3339 (no seconds, `+0200`,
    `.Z`...). The local part is parsed with a `Z` and a cached offset subtracted: several
    times cheaper than `astimezone(UTC)` or `replace(tzinfo=...)` on CPython 3.11.
    """
    size = len(text)
    if size < 20 or text[10] not in "Tt" or text[4] != "-" or text[7] != "-":
        return None
    if text[13] != ":" or text[16] != ":" or not text.isascii():
        return None
    last = text[-1]
    offset: timedelta | None
    if last == "Z" or last == "z":
        end, offset = size - 1, _ZERO
    elif size >= 25 and text[-3] == ":":
        end, tail = size - 6, text[-6:]
        offset = _OFFSETS.get(tail)  # timedelta(0) is falsy: compare with None
        if offset is None:
            offset = _offset(tail)
            if offset is None:
                return None
    else:
        return None
    if end != 19 and (text[19] != "." or end == 20 or text[20:end].strip(_DIGITS)):
        return None
    try:
        # `Z` or a zero offset (`+00:00`): fromisoformat reads it as UTC directly, and
        # twice as fast as with the offset replaced and subtracted.
        if last == "Z" or (not offset and last != "z"):
            return datetime.fromisoformat(text)
        return datetime.fromisoformat(text[:end] + "Z") - offset
    except (ValueError, OverflowError):  # not a date (2024-02-30), or before year 1 in UTC
        return None


_ZERO = timedelta(0)
_OFFSETS: dict[str, timedelta] = {}


def _offset(text: str) -> timedelta | None:
    """`+hh:mm` / `-hh:mm` as the timedelta to subtract to reach UTC (cached)."""
    sign, hours, minutes = text[0], text[1:3], text[4:6]
    if sign not in "+-" or hours.strip(_DIGITS) or minutes.strip(_DIGITS):
        return None
    if len(hours) != 2 or len(minutes) != 2 or hours > "23" or minutes > "59":
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    # At most 2 x 24 x 60 valid offsets exist, so the cache stays small.
    _OFFSETS[text] = delta if sign == "+" else -delta
    return _OFFSETS[text]


def is_naive_timestamp(text: str) -> bool:
    """A date and time that would be valid if it carried an offset (for the message only)."""
    return parse_timestamp(text + "Z") is not None


# --- type-specific attributes ---------------------------------------------------------


class AttributeKind(NamedTuple):
    """An attribute's JSON types (as Python types) and a further check once the type fits.

    Split in two so the common kinds (text, bool) cost one set lookup and no call."""

    types: frozenset[type]
    expected: str
    within: Callable[[Any], bool] | None = None


_STRING, _BOOL, _NUMBER = frozenset({str}), frozenset({bool}), frozenset({int, float})


def _timestamp(value: str) -> bool:
    return parse_timestamp(value) is not None


def _identifier_length(value: str) -> bool:
    return 0 < len(value) <= MAX_IDENTIFIER


def _integer_in(low: int, high: int) -> Callable[[Any], bool]:
    # v % 1 == 0 admits 3.0, as JSON Schema's "integer" does.
    return lambda v: low <= v <= high and v % 1 == 0


KINDS: dict[str, AttributeKind] = {
    "id": AttributeKind(_STRING, "a string of 1-128 characters", _identifier_length),
    "slug": AttributeKind(_STRING, "a department slug", is_slug),
    "text": AttributeKind(_STRING, "a string"),
    "bool": AttributeKind(_BOOL, "true or false"),
    "seconds": AttributeKind(_NUMBER, "a number of seconds >= 0", lambda v: v >= 0),
    "number": AttributeKind(_NUMBER, "a number"),
    "timestamp": AttributeKind(_STRING, "an RFC 3339 timestamp with offset", _timestamp),
    "sentiment": AttributeKind(_NUMBER, "a number in -1..1", lambda v: -1 <= v <= 1),
    "csat": AttributeKind(_NUMBER, "an integer in 1..5", _integer_in(1, 5)),
    "nps": AttributeKind(_NUMBER, "an integer in 0..10", _integer_in(0, 10)),
    "ces": AttributeKind(_NUMBER, "an integer in 1..7", _integer_in(1, 7)),
}


class AttributeRule(NamedTuple):
    name: str
    kind: str
    required: bool = False


def _rules(*specs: str) -> tuple[AttributeRule, ...]:
    """'name:kind' optional, 'name:kind!' required."""
    rules = []
    for spec in specs:
        name, kind = spec.rstrip("!").split(":")
        rules.append(AttributeRule(name, kind, spec.endswith("!")))
    return tuple(rules)


_CASE = _rules("case_id:id")
_APPOINTMENT = _rules("appointment_id:id", "scheduled_for:timestamp")
_INVOICE = _rules("invoice_id:id", "amount:number")
_DISPUTE = _rules("dispute_id:id")
_ORDER = _rules("order_id:id", "promised_for:timestamp")

ATTRIBUTE_RULES: dict[str, tuple[AttributeRule, ...]] = {
    "contact": _rules(
        "reason:text", "wait_seconds:seconds", "handle_seconds:seconds", "resolved:bool"
    ),
    "handoff": _rules("to_department:slug!", "context_transferred:bool"),
    "case_opened": _CASE,
    "case_resolved": _CASE,
    "case_reopened": _CASE,
    "promise_made": _rules("promise_id:id!", "due_at:timestamp!", "description:text"),
    "promise_kept": _rules("promise_id:id!"),
    "appointment_scheduled": _APPOINTMENT,
    "appointment_completed": _APPOINTMENT,
    "appointment_missed": _APPOINTMENT,
    "rework": _rules("reason:text"),
    "invoice_issued": _INVOICE,
    "invoice_corrected": _INVOICE,
    "billing_dispute_opened": _DISPUTE,
    "billing_dispute_resolved": _DISPUTE,
    "order_placed": _ORDER,
    "order_delivered": _ORDER,
    "order_delayed": _ORDER,
    "feedback_received": _rules("feedback_id:id!", "sentiment:sentiment"),
    "feedback_answered": _rules("feedback_id:id!"),
    "survey_response": _rules("csat:csat", "nps:nps", "ces:ces"),
    "proactive_update": _rules("about:text"),
    "journey_closed": _rules("outcome:text"),
}


class AttributeProblem(NamedTuple):
    code: str  # missing_attribute | bad_attribute
    name: str  # the attribute's key, "" when the problem is about the set of keys
    expected: str


_ABSENT = object()
_Compiled = tuple[str, frozenset[type], Callable[[Any], bool] | None, bool, str]
# The rules flattened once into plain tuples, for the per-event loop.
_COMPILED: dict[str, tuple[_Compiled, ...]] = {
    event_type: tuple(
        (r.name, KINDS[r.kind].types, KINDS[r.kind].within, r.required, r.kind) for r in type_rules
    )
    for event_type, type_rules in ATTRIBUTE_RULES.items()
}


def attribute_problem(event_type: str, attributes: dict[str, Any]) -> AttributeProblem | None:
    """The first way `attributes` breaks the rules of `event_type`, or None."""
    for name, types, within, required, kind in _COMPILED[event_type]:
        value = attributes.get(name, _ABSENT)
        if value is _ABSENT:
            if required:
                return AttributeProblem("missing_attribute", name, KINDS[kind].expected)
        elif type(value) not in types or (within is not None and not within(value)):
            return AttributeProblem("bad_attribute", name, KINDS[kind].expected)
    if event_type == "survey_response" and not any(a in attributes for a in SURVEY_ANSWERS):
        return AttributeProblem("missing_attribute", "", "at least one of csat, nps, ces")
    return None
