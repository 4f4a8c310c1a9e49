"""The reference check: walk a document in contract order and name its first problem.

Slower than the validator's fast path and written for clarity: every rejection message
names the field, shows the offending value (shortened) and says what was expected. It also
accepts the rare valid documents the fast path leaves to it (`schema_version: 1.0`).
"""

from __future__ import annotations

import difflib
import functools
from datetime import datetime
from typing import Any

import msgspec

from pipeline.contract import bounds, rules
from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES, Rejection, Touchpoint

_SHOWN_MAX = 48
_EXAMPLE_TIMESTAMP = "2024-05-01T09:30:00+02:00"


class _Refused(Exception):
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


def shown(value: object) -> str:
    """The offending value for a message: JSON-like, one line, shortened."""
    text = repr(value)
    text = {"True": "true", "False": "false", "None": "null"}.get(text, text)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "…"


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    names.update({dict: "object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


def refuse(code: str, field: str, value: object, expected: str, what: str = "") -> _Refused:
    got = what or f"got {_json_type(value)} {shown(value)}"
    return _Refused(code, field, f"{field}: {got}, expected {expected}")


def diagnose(
    raw: bytes, horizon: datetime, earliest: datetime = bounds.EARLIEST
) -> Touchpoint | Rejection:
    """The verdict on one message whose size is within limits. `horizon` and `earliest`
    are the latest and the earliest acceptable `occurred_at`."""
    document: Any = None
    try:
        document = _decode(raw)
        return _touchpoint(document, horizon, earliest)
    except _Refused as refused:
        department = _department_of(document)
        if document is None and refused.code in _UNDECODABLE:
            department = rules.readable_department(bounds.top_level_string(raw, "department"))
        return Rejection(
            code=refused.code,
            field=refused.field,
            message=refused.message,
            department=department,
        )


# Valid JSON the decoder must not or cannot read: the department is found by a scan.
_UNDECODABLE = frozenset({"too_deep", "number_out_of_range"})


def _department_of(document: Any) -> str:
    """The department when it can be read, so rejections can be counted per department."""
    department = document.get("department") if isinstance(document, dict) else None
    return rules.readable_department(department)


def _decode(raw: bytes) -> Any:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        what = f"byte {raw[exc.start : exc.start + 1]!r} at offset {exc.start} is not UTF-8"
        raise refuse("not_utf8", "message", None, "UTF-8 encoded JSON", what) from None
    if not raw.strip():
        raise refuse("not_json", "message", None, "one JSON object", "empty message")
    # Decoding recurses per level (RecursionError near 1,000 levels), so a document that
    # may nest deeper than the contract allows is only scanned, to name the place.
    if bounds.nesting_depth(raw) > bounds.MAX_DEPTH:
        raise _out_of_bounds(bounds.locate(raw) or _TOO_DEEP)
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        beyond = bounds.locate(raw) if "out of range" in str(exc) else None
        if beyond is not None:  # 1e400: valid JSON, but no double holds it
            raise _out_of_bounds(beyond) from None
        what = f"{shown(raw.decode('utf-8'))} is not JSON ({exc})"
        raise refuse("not_json", "message", None, "one JSON object", what) from None
    if not isinstance(document, dict):
        raise refuse("not_object", "message", document, "one JSON object")
    return document


def _touchpoint(doc: dict[str, Any], horizon: datetime, earliest: datetime) -> Touchpoint:
    _schema_version(doc)
    for name in rules.REQUIRED_FIELDS:
        if name not in doc:
            found = [other for other in doc if _nearest_field(other) == name]
            hint = f" (found {shown(found[0])}: misspelt?)" if found else ""
            raise refuse("missing_field", name, None, "it to be present", "absent" + hint)
    event_type = _string(doc, "type")
    if event_type not in EVENT_TYPES:
        raise refuse("unknown_type", "type", event_type, _vocabulary(event_type))
    touchpoint = Touchpoint(
        event_id=_identifier(doc, "event_id"),
        occurred_at=_occurred_at(doc, horizon, earliest),
        customer_id=_identifier(doc, "customer_id"),
        journey_id=_identifier(doc, "journey_id") if doc.get("journey_id") is not None else None,
        department=_slug(doc, "department"),
        type=event_type,
        stage=_slug(doc, "stage") if doc.get("stage") is not None else None,
        channel=_channel(doc),
        attributes=_attributes(doc, event_type),
    )
    unknown = [name for name in doc if name not in rules.CONTRACT_FIELDS]
    if unknown:
        # The name is the sender's: shorten it so a 10 kB key cannot make a 10 kB reason.
        name = unknown[0] if len(unknown[0]) <= 64 else unknown[0][:63] + "…"
        what = f"unknown field {shown(unknown[0])}"
        nearest = _nearest_field(unknown[0])
        expected = "only the contract's fields" + (
            f" (did you mean {nearest!r}?)" if nearest else " (put extras in attributes)"
        )
        raise refuse("unknown_field", name, None, expected, what)
    return touchpoint


def _folded(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


_FOLDED_FIELDS = {_folded(name): name for name in rules.CONTRACT_FIELDS}


@functools.lru_cache(maxsize=1024)
def _nearest_field(name: str) -> str | None:
    """The contract field a sender most likely meant (journeyId, journeyid, jouney_id):
    catching such misspellings is why unknown top-level fields are refused at all."""
    if name in rules.CONTRACT_FIELDS:
        return None
    folded = _folded(name[:64])
    close = difflib.get_close_matches(folded, _FOLDED_FIELDS, n=1, cutoff=0.8)
    return _FOLDED_FIELDS[close[0]] if close else None


@functools.lru_cache(maxsize=1024)
def _vocabulary(event_type: str) -> str:
    """What was expected instead of an unknown type: too long to list, so suggest.

    Cached because difflib takes ~100 us and a misconfigured system repeats one typo."""
    close = difflib.get_close_matches(event_type[:64], EVENT_TYPES, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"one of the {len(EVENT_TYPES)} event types of the contract{hint}"


def _schema_version(doc: dict[str, Any]) -> None:
    version = doc.get("schema_version", 1)
    if not rules.is_integral(version):
        raise refuse("wrong_type", "schema_version", version, "an integer")
    if version not in rules.SCHEMA_VERSIONS:
        expected = " or ".join(str(v) for v in rules.SCHEMA_VERSIONS)
        raise refuse("unsupported_schema_version", "schema_version", version, expected)


def _string(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if type(value) is not str:
        raise refuse("wrong_type", name, value, "a string")
    return value


def _identifier(doc: dict[str, Any], name: str) -> str:
    value = _string(doc, name)
    if not value:
        raise refuse("empty_identifier", name, value, "1-128 characters")
    if len(value) > rules.MAX_IDENTIFIER:
        what = f"{len(value)} characters ({shown(value)})"
        raise refuse("identifier_too_long", name, value, "at most 128 characters", what)
    return value


def _slug(doc: dict[str, Any], name: str) -> str:
    value = _string(doc, name)
    if not rules.is_slug(value):
        expected = "a slug: a-z first, then a-z, 0-9 or _, at most 64 characters"
        raise refuse("bad_slug", name, value, expected)
    return value


def _occurred_at(doc: dict[str, Any], horizon: datetime, earliest: datetime) -> datetime:
    text = _string(doc, "occurred_at")
    moment = rules.parse_timestamp(text)
    if moment is None:
        expected = f"an RFC 3339 timestamp with offset such as {_EXAMPLE_TIMESTAMP}"
        if rules.is_naive_timestamp(text):
            raise refuse("naive_timestamp", "occurred_at", text, expected, f"{shown(text)} "
                         "has no UTC offset")  # fmt: skip
        raise refuse("bad_timestamp", "occurred_at", text, expected)
    if moment > horizon:
        limit = horizon.isoformat(timespec="seconds")
        expected = f"no later than {limit} (now plus the clock-skew tolerance)"
        raise refuse("future_timestamp", "occurred_at", text, expected, f"{shown(text)} is ahead")
    if moment < earliest:
        limit = earliest.isoformat(timespec="seconds")
        expected = f"no earlier than {limit} (JOURNEYS_CONTRACT_EARLIEST_OCCURRED_AT)"
        raise refuse("early_timestamp", "occurred_at", text, expected, f"{shown(text)} is earlier")
    return moment


def _channel(doc: dict[str, Any]) -> str | None:
    if doc.get("channel") is None:
        return None
    value = _string(doc, "channel")
    if value not in CHANNELS:
        raise refuse("unknown_channel", "channel", value, "one of " + ", ".join(CHANNELS))
    return value


def _attributes(doc: dict[str, Any], event_type: str) -> dict[str, Any]:
    attributes = doc.get("attributes", {})
    if not isinstance(attributes, dict):
        raise refuse("wrong_type", "attributes", attributes, "an object")
    out = bounds.attribute_bounds(attributes)
    if out is not None:
        raise _out_of_bounds(out)
    problem = rules.attribute_problem(event_type, attributes)
    if problem is None:
        return attributes
    field = f"attributes.{problem.name}" if problem.name else "attributes"
    expected = f"{problem.expected} (for type {event_type})"
    if problem.code == "missing_attribute":
        what = "absent" if problem.name else "no survey answer"
        raise refuse(problem.code, field, None, expected, what)
    raise refuse(problem.code, field, attributes[problem.name], expected)


_TOO_DEEP = bounds.OutOfBounds(
    "too_deep", "message", "nested too deep", f"at most {bounds.MAX_DEPTH} levels"
)


def _out_of_bounds(out: bounds.OutOfBounds) -> _Refused:
    # The path is the sender's: shorten it so a long key cannot make a long reason.
    field = out.path if len(out.path) <= 64 else out.path[:63] + "…"
    return refuse(out.code, field, None, out.expected, out.what)
