"""One bad event per rejection class: the code is stable and the message names the field.

Departments read these messages in the dead-letter table; an imprecise one costs them a
support ticket. Every code in REJECTION_CODES must appear here at least once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.contract import REJECTION_CODES, Rejection, Touchpoint, Validator, validate
from pipeline.settings import load_settings

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def event(**changes: Any) -> bytes:
    """A valid contact event with `changes` applied (a value of ... removes the field)."""
    document: dict[str, Any] = {
        "event_id": "ev-1",
        "occurred_at": "2025-03-01T10:00:00+01:00",
        "customer_id": "cust-1",
        "department": "customer_service",
        "type": "contact",
        "attributes": {"resolved": False},
    }
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def typed(event_type: str, **attributes: Any) -> bytes:
    return event(type=event_type, attributes=attributes)


DUE = "2025-03-05T17:00:00+01:00"
CASES: list[tuple[str, bytes | None, str, str]] = [
    ("tombstone", None, "tombstone", "message"),
    ("not utf-8", b'{"event_id": "\xff"}', "not_utf8", "message"),
    ("not json", b'{"event_id": ', "not_json", "message"),
    ("not json: NaN", b'{"event_id": NaN}', "not_json", "message"),
    ("empty", b"", "not_json", "message"),
    ("blank", b"  \n", "not_json", "message"),
    ("array", b'[{"event_id": "e"}]', "not_object", "message"),
    ("string", b'"hello"', "not_object", "message"),
    ("missing event_id", event(event_id=...), "missing_field", "event_id"),
    ("missing occurred_at", event(occurred_at=...), "missing_field", "occurred_at"),
    ("missing customer_id", event(customer_id=...), "missing_field", "customer_id"),
    ("missing department", event(department=...), "missing_field", "department"),
    ("missing type", event(type=...), "missing_field", "type"),
    ("event_id number", event(event_id=42), "wrong_type", "event_id"),
    ("customer_id null", event(customer_id=None), "wrong_type", "customer_id"),
    ("journey_id list", event(journey_id=["a"]), "wrong_type", "journey_id"),
    ("occurred_at epoch", event(occurred_at=1714555800), "wrong_type", "occurred_at"),
    ("attributes list", event(attributes=[1]), "wrong_type", "attributes"),
    ("schema_version string", event(schema_version="1"), "wrong_type", "schema_version"),
    ("channel number", event(channel=3), "wrong_type", "channel"),
    ("empty event_id", event(event_id=""), "empty_identifier", "event_id"),
    ("empty journey_id", event(journey_id=""), "empty_identifier", "journey_id"),
    ("long customer_id", event(customer_id="c" * 129), "identifier_too_long", "customer_id"),
    ("department capital", event(department="Billing"), "bad_slug", "department"),
    ("department dash", event(department="field-service"), "bad_slug", "department"),
    ("stage digit first", event(stage="2nd_line"), "bad_slug", "stage"),
    ("stage too long", event(stage="s" * 65), "bad_slug", "stage"),
    ("unknown type", event(type="complaint"), "unknown_type", "type"),
    ("unknown channel", event(channel="sms"), "unknown_channel", "channel"),
    ("naive", event(occurred_at="2025-03-01T10:00:00"), "naive_timestamp", "occurred_at"),
    ("naive frac", event(occurred_at="2025-03-01T10:00:00.25"), "naive_timestamp", "occurred_at"),
    ("space", event(occurred_at="2025-03-01 10:00:00Z"), "bad_timestamp", "occurred_at"),
    ("no colon", event(occurred_at="2025-03-01T10:00:00+0100"), "bad_timestamp", "occurred_at"),
    ("feb 30", event(occurred_at="2025-02-30T10:00:00Z"), "bad_timestamp", "occurred_at"),
    ("date only", event(occurred_at="2025-03-01"), "bad_timestamp", "occurred_at"),
    ("future", event(occurred_at="2025-03-01T12:06:00Z"), "future_timestamp", "occurred_at"),
    ("year 0001", event(occurred_at="0001-01-01T00:00:00Z"), "early_timestamp", "occurred_at"),
    (
        "1899 in UTC",
        event(occurred_at="1900-01-01T00:30:00+01:00"),
        "early_timestamp",
        "occurred_at",
    ),
    (
        "deep",
        event(
            attributes={"notes": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
        ),
        "too_deep",
        "attributes.notes",
    ),
    ("deep message", b"[" * 10_000 + b"]" * 10_000, "too_deep", "message"),
    ("int > 64 bits", event(attributes={"n": 2**64}), "number_out_of_range", "attributes.n"),
    (
        "nested int",
        event(attributes={"a": [{"n": -(2**63) - 1}]}),
        "number_out_of_range",
        "attributes.a[0].n",
    ),
    (
        "float 1e400",
        event(attributes={"x": 0}).replace(b'"x": 0', b'"x": 1e400'),
        "number_out_of_range",
        "attributes.x",
    ),
    (
        "amount 1e19",
        typed("invoice_issued", amount=1e19),
        "number_out_of_range",
        "attributes.amount",
    ),
    ("long string", event(attributes={"note": "x" * 16_385}), "string_too_long", "attributes.note"),
    ("long key", event(attributes={"a": {"k" * 129: 1}}), "string_too_long", "attributes.a"),
    ("long array", event(attributes={"a": [0] * 1025}), "too_many_items", "attributes.a"),
    (
        "wide object",
        event(attributes={str(i): 0 for i in range(1025)}),
        "too_many_items",
        "attributes",
    ),
    ("extra field", event(priority="high"), "unknown_field", "priority"),
    ("version 2", event(schema_version=2), "unsupported_schema_version", "schema_version"),
    ("handoff", typed("handoff"), "missing_attribute", "attributes.to_department"),
    ("promise id", typed("promise_made", due_at=DUE), "missing_attribute", "attributes.promise_id"),
    (
        "promise due",
        typed("promise_made", promise_id="p"),
        "missing_attribute",
        "attributes.due_at",
    ),
    ("kept", typed("promise_kept"), "missing_attribute", "attributes.promise_id"),
    ("feedback", typed("feedback_received"), "missing_attribute", "attributes.feedback_id"),
    ("answered", typed("feedback_answered"), "missing_attribute", "attributes.feedback_id"),
    ("no answers", typed("survey_response", comment="ok"), "missing_attribute", "attributes"),
    (
        "no attributes",
        event(type="promise_kept", attributes=...),
        "missing_attribute",
        "attributes.promise_id",
    ),
    (
        "due_at text",
        typed("promise_made", promise_id="p", due_at="friday"),
        "bad_attribute",
        "attributes.due_at",
    ),
    (
        "due_at naive",
        typed("promise_made", promise_id="p", due_at="2025-03-05T17:00:00"),
        "bad_attribute",
        "attributes.due_at",
    ),
    ("csat 6", typed("survey_response", csat=6), "bad_attribute", "attributes.csat"),
    ("csat 4.5", typed("survey_response", csat=4.5), "bad_attribute", "attributes.csat"),
    ("nps text", typed("survey_response", nps="9"), "bad_attribute", "attributes.nps"),
    ("ces 0", typed("survey_response", ces=0), "bad_attribute", "attributes.ces"),
    (
        "sentiment 2",
        typed("feedback_received", feedback_id="f", sentiment=2),
        "bad_attribute",
        "attributes.sentiment",
    ),
    (
        "wait negative",
        typed("contact", wait_seconds=-1),
        "bad_attribute",
        "attributes.wait_seconds",
    ),
    ("resolved text", typed("contact", resolved="yes"), "bad_attribute", "attributes.resolved"),
    (
        "to_department",
        typed("handoff", to_department="Field Service"),
        "bad_attribute",
        "attributes.to_department",
    ),
    ("amount text", typed("invoice_issued", amount="12.50"), "bad_attribute", "attributes.amount"),
    (
        "empty promise_id",
        typed("promise_kept", promise_id=""),
        "bad_attribute",
        "attributes.promise_id",
    ),
]


@pytest.mark.parametrize(
    ("raw", "code", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rejection_names_code_and_field(raw: bytes | None, code: str, field: str) -> None:
    rejection = validate(raw, now=NOW)
    assert isinstance(rejection, Rejection), rejection
    assert (rejection.code, rejection.field) == (code, field), rejection.message
    assert rejection.message.startswith(f"{field}: "), rejection.message
    assert "\n" not in rejection.message and len(rejection.message) < 400
    assert "expected" in rejection.message


def test_every_rejection_code_is_exercised_and_explained() -> None:
    assert {case[2] for case in CASES} | {"too_large"} == set(REJECTION_CODES)
    assert all(meaning and "\n" not in meaning for meaning in REJECTION_CODES.values())


def test_too_large_keeps_the_department() -> None:
    raw = event(department="billing", attributes={"resolved": True, "note": "x" * 70_000})
    rejection = validate(raw, now=NOW)
    assert isinstance(rejection, Rejection)
    assert (rejection.code, rejection.field, rejection.department) == (
        "too_large",
        "message",
        "billing",
    )
    assert str(len(raw)) in rejection.message and "65536" in rejection.message


def test_size_limit_is_configurable() -> None:
    raw = event()
    assert isinstance(Validator(max_bytes=len(raw)).validate(raw, now=NOW), Rejection) is False
    rejection = Validator(max_bytes=len(raw) - 1).validate(raw, now=NOW)
    assert isinstance(rejection, Rejection) and rejection.code == "too_large"


def test_future_tolerance_is_configurable() -> None:
    raw = event(occurred_at="2025-03-01T13:00:00Z")  # an hour ahead of NOW
    assert isinstance(validate(raw, now=NOW), Rejection)
    lenient = Validator(future_tolerance=timedelta(hours=1))
    assert not isinstance(lenient.validate(raw, now=NOW), Rejection)


@pytest.mark.parametrize(
    ("raw", "department"),
    [
        (event(type="complaint", department="billing"), "billing"),
        (event(department="Billing"), "Billing"),  # misspelt: still theirs to see
        (event(department="x" * 65), ""),
        (event(department="bill\ning"), ""),
        (event(department=7), ""),
        (event(department=...), ""),
        (b'{"department": "billing", ', ""),  # not JSON: nothing can be read
    ],
)
def test_department_is_kept_when_readable(raw: bytes, department: str) -> None:
    rejection = validate(raw, now=NOW)
    assert isinstance(rejection, Rejection) and rejection.department == department


def test_message_shows_the_offending_value_shortened() -> None:
    rejection = validate(event(type="x" * 500), now=NOW)
    assert isinstance(rejection, Rejection)
    assert "'xxxxxxxx" in rejection.message and "…" in rejection.message
    assert len(rejection.message) < 400


def test_tombstones_and_bytes_like_values_are_checked_not_crashed_on() -> None:
    tombstone = validate(None, now=NOW)
    assert (
        isinstance(tombstone, Rejection)
        and tombstone.code == "tombstone"
        and tombstone.message
        == "message: no value (a Kafka tombstone, value null), expected one JSON object"
    )
    assert validate(b"", now=NOW).code == "not_json"  # an empty value is not a tombstone
    assert validate(bytearray(event()), now=NOW) == validate(memoryview(event()), now=NOW)
    assert isinstance(validate(memoryview(event()), now=NOW), Touchpoint)


def test_an_unknown_field_with_a_huge_name_gets_a_short_reason() -> None:
    rejection = validate(event(**{"k" * 10_000: 1}), now=NOW)
    assert isinstance(rejection, Rejection) and rejection.code == "unknown_field"
    assert len(rejection.field) == 64 and len(rejection.message) < 200


def test_first_problem_in_contract_order_wins() -> None:
    rejection = validate(event(event_id="", department="Billing", type="complaint"), now=NOW)
    assert isinstance(rejection, Rejection) and rejection.code == "unknown_type"


def test_limits_come_from_the_operators_settings() -> None:
    settings = load_settings(
        contract_max_bytes=100,
        contract_future_tolerance_seconds=7200,
        contract_earliest_occurred_at="2000-01-01T00:00:00+01:00",
    )
    validator = Validator.from_settings(settings)
    assert (validator.max_bytes, validator.future_tolerance) == (100, timedelta(hours=2))
    assert validator.earliest == datetime(1999, 12, 31, 23, tzinfo=UTC)
    defaults = Validator.from_settings(load_settings())
    assert (defaults.max_bytes, defaults.future_tolerance) == (65_536, timedelta(minutes=5))
    assert defaults.earliest == datetime(1900, 1, 1, tzinfo=UTC)


def test_earliest_occurred_at_is_configurable_and_years_of_backfill_pass() -> None:
    backfill = event(occurred_at="1950-06-01T08:00:00+01:00")
    assert isinstance(validate(backfill, now=NOW), Touchpoint)
    strict = Validator(earliest=datetime(2000, 1, 1, tzinfo=UTC))
    rejection = strict.validate(backfill, now=NOW)
    assert isinstance(rejection, Rejection) and rejection.code == "early_timestamp"
    assert "2000-01-01T00:00:00+00:00" in rejection.message
    assert isinstance(strict.validate(event(), now=NOW), Touchpoint)


def test_validator_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        Validator(max_bytes=0)
    with pytest.raises(ValueError, match="future_tolerance"):
        Validator(future_tolerance=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="earliest"):
        Validator(earliest=datetime(1900, 1, 1))  # noqa: DTZ001 (naive on purpose)


@pytest.mark.parametrize(
    ("misspelt", "meant"),
    [("journeyid", "journey_id"), ("journeyId", "journey_id"), ("chanel", "channel")],
)
def test_a_misspelt_optional_field_gets_the_nearest_field_suggested(
    misspelt: str, meant: str
) -> None:
    rejection = validate(event(**{misspelt: "x"}), now=NOW)
    assert isinstance(rejection, Rejection) and rejection.code == "unknown_field"
    assert rejection.field == misspelt
    assert f"did you mean {meant!r}?" in rejection.message


def test_an_unrelated_extra_field_is_pointed_to_attributes() -> None:
    rejection = validate(event(priority="high"), now=NOW)
    assert isinstance(rejection, Rejection)
    assert "did you mean" not in rejection.message and "attributes" in rejection.message


def test_a_misspelt_required_field_is_named_beside_the_missing_one() -> None:
    rejection = validate(event(customer_id=..., customerID="cust-1"), now=NOW)
    assert isinstance(rejection, Rejection) and rejection.code == "missing_field"
    assert rejection.field == "customer_id"
    assert "found 'customerID'" in rejection.message
