"""The emitter's validation and accounting, without a broker (dry run: no producer at all)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from pipeline.contract import Rejection, Touchpoint
from pipeline.emit import Emitter

EVENT = {
    "event_id": "ev-1",
    "occurred_at": datetime(2025, 6, 2, 8, 0, tzinfo=UTC),
    "customer_id": "cust-1",
    "department": "billing",
    "type": "invoice_issued",
    "attributes": {"invoice_id": "inv-1", "amount": 10},
}


def dry() -> Emitter:
    return Emitter("127.0.0.1:1", "touchpoints", dry_run=True)


def test_dry_run_counts_valid_and_refused_by_reason() -> None:
    emitter = dry()
    naive = EVENT | {"occurred_at": datetime(2025, 6, 2, 8, 0)}  # noqa: DTZ001 - under test
    events = [EVENT, naive, b"{", EVENT | {"type": "invoice"}, "not json either"]
    results = [emitter.emit(event) for event in events]
    report = emitter.flush()

    assert [type(r) for r in results] == [Touchpoint, Rejection, Rejection, Rejection, Rejection]
    assert (report.accepted, report.sent, report.failed) == (1, 0, 0)
    assert report.refused == Counter(not_json=2, naive_timestamp=1, unknown_type=1)
    assert [position for position, _ in report.first_refusals] == [2, 3, 4, 5]
    assert report.summary() == (
        "0 sent, 4 refused (not_json: 2, naive_timestamp: 1, unknown_type: 1), 0 failed"
    )


def test_positions_given_by_the_caller_label_refusals() -> None:
    emitter = dry()
    emitter.emit(b"[]", position=41)
    emitter.emit(EVENT, position=42)
    emitter.emit(b"{}")  # numbering continues from the last position
    assert [p for p, _ in emitter.report.first_refusals] == [41, 43]


def test_only_the_first_refusals_are_kept_in_detail() -> None:
    emitter = dry()
    emitter.report.keep = 3
    for _ in range(10):
        emitter.emit(b"[]")
    assert emitter.report.refused_total == 10 and len(emitter.report.first_refusals) == 3


def test_objects_json_cannot_hold_are_refused_not_raised() -> None:
    emitter = dry()
    rejection = emitter.emit(EVENT | {"attributes": {"invoice_id": "i", "raw": object()}})
    assert isinstance(rejection, Rejection)
    assert (rejection.code, rejection.field, rejection.department) == (
        "not_json",
        "message",
        "billing",
    )
    assert rejection.message.startswith("message: cannot be written as JSON")


def test_touchpoints_are_sent_as_canonical_json() -> None:
    touchpoint = Touchpoint(
        event_id="ev-2",
        occurred_at=datetime(2025, 6, 2, 8, 0, tzinfo=UTC),
        customer_id="cust-1",
        department="sales",
        type="contact",
    )
    assert dry().emit(touchpoint) == touchpoint


def test_illegal_topic_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="bad topic"):
        Emitter("127.0.0.1:1", "bad topic", dry_run=True)
