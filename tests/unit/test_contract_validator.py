"""What an accepted touchpoint looks like, and canonical JSON round trips."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings

from pipeline.contract import Rejection, Touchpoint, Validator, encode_touchpoint, validate
from pipeline.contract.diagnose import diagnose
from tests.support.contract_documents import PINNED_NOW, VALIDATOR, valid_documents

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def accepted(document: dict[str, Any], now: datetime | None = NOW) -> Touchpoint:
    result = validate(json.dumps(document).encode(), now=now)
    assert isinstance(result, Touchpoint), result
    return result


def contact(**changes: Any) -> dict[str, Any]:
    document = {
        "event_id": "ev-1",
        "occurred_at": "2025-03-01T10:00:00.250+01:00",
        "customer_id": "cust-1",
        "department": "customer_service",
        "type": "contact",
    }
    return document | changes


def test_occurred_at_is_normalised_to_utc() -> None:
    touchpoint = accepted(contact())
    assert touchpoint.occurred_at == datetime(2025, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
    assert touchpoint.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T09:00:00Z", datetime(2025, 3, 1, 9, tzinfo=UTC)),
        ("2025-03-01t09:00:00z", datetime(2025, 3, 1, 9, tzinfo=UTC)),
        ("2025-03-01T04:30:00-04:30", datetime(2025, 3, 1, 9, tzinfo=UTC)),
        ("2025-03-01T00:00:00+23:59", datetime(2025, 2, 28, 0, 1, tzinfo=UTC)),
        ("2025-03-01T09:00:00.123456789+00:00", datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)),
        ("2024-02-29T09:00:00Z", datetime(2024, 2, 29, 9, tzinfo=UTC)),
    ],
)
def test_rfc3339_spellings_are_accepted(text: str, expected: datetime) -> None:
    assert accepted(contact(occurred_at=text)).occurred_at == expected


def test_attributes_are_kept_with_unknown_keys() -> None:
    attributes = {"resolved": True, "agent": {"id": 7}, "tags": ["vip"]}
    assert accepted(contact(attributes=attributes)).attributes == attributes


def test_optional_fields_absent_or_null_are_none() -> None:
    absent = accepted(contact())
    null = accepted(contact(journey_id=None, stage=None, channel=None))
    for touchpoint in (absent, null):
        assert (touchpoint.journey_id, touchpoint.stage, touchpoint.channel) == (None, None, None)
        assert touchpoint.attributes == {} and touchpoint.schema_version == 1
        assert touchpoint.key == "cust-1"


def test_stage_and_journey_are_kept_as_emitted() -> None:
    touchpoint = accepted(contact(stage="onboarding", journey_id="case-9", channel="chat"))
    assert (touchpoint.stage, touchpoint.journey_id, touchpoint.channel) == (
        "onboarding",
        "case-9",
        "chat",
    )
    assert touchpoint.key == "case-9"


def test_schema_version_one_as_float_is_accepted_as_json_schema_does() -> None:
    assert accepted(contact(schema_version=1.0)).schema_version == 1


def test_text_input_is_accepted_like_bytes() -> None:
    text = json.dumps(contact(customer_id="Müller"))
    assert validate(text, now=NOW) == validate(text.encode(), now=NOW)


def test_wall_clock_is_used_when_now_is_none() -> None:
    wall = datetime.now(UTC)
    ahead = contact(occurred_at=(wall + timedelta(hours=1)).isoformat())
    recent = contact(occurred_at=(wall - timedelta(seconds=1)).isoformat())
    result = validate(json.dumps(ahead).encode())
    assert isinstance(result, Rejection) and result.code == "future_timestamp"
    assert accepted(recent, now=None).occurred_at <= wall


def test_within_the_tolerance_is_accepted() -> None:
    edge = (NOW + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=2)))
    assert accepted(contact(occurred_at=edge.isoformat())).occurred_at == edge


def test_canonical_json_is_sorted_compact_and_utc() -> None:
    touchpoint = accepted(contact(attributes={"z": 1, "a": 2}, journey_id=None))
    assert encode_touchpoint(touchpoint) == (
        b'{"attributes":{"a":2,"z":1},"customer_id":"cust-1","department":"customer_service",'
        b'"event_id":"ev-1","occurred_at":"2025-03-01T09:00:00.250000Z","schema_version":1,'
        b'"type":"contact"}'
    )


def test_canonical_json_refuses_naive_datetimes() -> None:
    naive = Touchpoint(
        event_id="e",
        occurred_at=datetime(2025, 1, 1),  # noqa: DTZ001 - the point of the test
        customer_id="c",
        department="sales",
        type="contact",
    )
    with pytest.raises(ValueError, match="occurred_at"):
        encode_touchpoint(naive)


@settings(max_examples=200, deadline=None)
@given(valid_documents())
def test_canonical_json_round_trips(document: dict[str, Any]) -> None:
    raw = json.dumps(document).encode()
    touchpoint = VALIDATOR.validate(raw, now=PINNED_NOW)
    assert touchpoint == diagnose(raw, VALIDATOR.horizon(PINNED_NOW))
    assert isinstance(touchpoint, Touchpoint)
    canonical = encode_touchpoint(touchpoint)
    again = VALIDATOR.validate(canonical, now=PINNED_NOW)
    assert again == touchpoint
    assert isinstance(again, Touchpoint) and encode_touchpoint(again) == canonical


def test_wall_clock_horizon_follows_a_clock_stepped_back(monkeypatch: pytest.MonkeyPatch) -> None:
    validator = Validator()
    wall = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    raw = json.dumps(contact(occurred_at="2025-03-01T12:04:00Z")).encode()
    monkeypatch.setattr(time, "time", lambda: wall.timestamp())
    assert isinstance(validator.validate(raw), Touchpoint)
    monkeypatch.setattr(time, "time", lambda: (wall - timedelta(hours=1)).timestamp())
    rejection = validator.validate(raw)
    assert isinstance(rejection, Rejection) and rejection.code == "future_timestamp"
