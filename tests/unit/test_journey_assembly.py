"""Journey assembly: journey_id keys, customer journeys split by gap and journey_closed."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.journey import JourneyBook, add, derive_journey_id
from pipeline.journey.events import stored_event
from tests.support.touchpoints import MODEL, TouchpointFactory, at, only_journey, play


def test_events_with_a_journey_id_form_that_journey(touchpoint_factory: TouchpointFactory) -> None:
    tps = [
        touchpoint_factory("order_placed", 0, journey_id="order-7", department="sales"),
        touchpoint_factory("order_delivered", 24 * 60, journey_id="order-7", department="delivery"),
    ]
    books, log = play(tps)
    assert list(books) == ["order-7"]
    assert [c.assignment.journey_id for c in log if c.assignment] == ["order-7", "order-7"]
    assert [c.assignment.stage for c in log if c.assignment] == ["purchase", "delivery"]
    assert only_journey(books).journey_id == "order-7"  # no gap split with a journey_id


def test_customer_events_split_after_the_inactivity_gap(
    touchpoint_factory: TouchpointFactory,
) -> None:
    gap_hours = 14 * 24
    tps = [
        touchpoint_factory("contact", 0),
        touchpoint_factory("contact", gap_hours),  # exactly the gap: same journey
        touchpoint_factory("contact", 2 * gap_hours + 0.01),  # just over: a new journey
    ]
    _, log = play(tps)
    ids = [c.assignment.journey_id for c in log if c.assignment]
    assert ids[0] == ids[1] != ids[2]
    first = stored_event(tps[0], MODEL)
    assert ids[0] == derive_journey_id("cust-1", first)
    assert ids[0].startswith("cust-1@2026-03-01T09:00:00Z#")


def test_journey_closed_ends_the_customer_journey(touchpoint_factory: TouchpointFactory) -> None:
    tps = [
        touchpoint_factory("contact", 0),
        touchpoint_factory("journey_closed", 1, outcome="solved"),
        touchpoint_factory("contact", 2),
    ]
    books, _ = play(tps)
    book = books["cust-1"]
    assert [len(j.events) for j in book.journeys] == [2, 1]
    statuses = [s.status for s in book.scores(MODEL)]
    assert statuses == ["closed", "open"]


def test_a_late_earlier_event_reidentifies_the_journey(
    touchpoint_factory: TouchpointFactory,
) -> None:
    later = touchpoint_factory("contact", 10, channel="phone", resolved=False)
    earlier = touchpoint_factory("contact", 5, channel="phone", resolved=False)
    books, log = play([later, earlier])
    old_id, new_id = log[0].assignment.journey_id, log[1].assignment.journey_id
    assert old_id != new_id
    assert log[1].retired == [old_id]
    assert [(a.event_id, a.journey_id) for a in log[1].moved] == [(later.event_id, new_id)]
    assert only_journey(books).journey_id == new_id
    # the same book as if the events had come in order
    in_order, _ = play([earlier, later])
    assert in_order["cust-1"].journeys == books["cust-1"].journeys


def test_a_late_event_bridging_two_journeys_merges_them(
    touchpoint_factory: TouchpointFactory,
) -> None:
    first = touchpoint_factory("contact", 0)
    second = touchpoint_factory("contact", 20 * 24)
    bridge = touchpoint_factory("contact", 10 * 24)
    books, log = play([first, second, bridge])
    assert log[0].assignment.journey_id != log[1].assignment.journey_id
    assert log[2].retired == [log[1].assignment.journey_id]
    assert len(only_journey(books).events) == 3


def test_a_late_journey_closed_splits_a_journey(touchpoint_factory: TouchpointFactory) -> None:
    tps = [touchpoint_factory("contact", 0), touchpoint_factory("contact", 5)]
    closing = touchpoint_factory("journey_closed", 2)
    books, log = play([*tps, closing])
    assert [len(j.events) for j in books["cust-1"].journeys] == [2, 1]
    assert log[2].moved[0].event_id == tps[1].event_id


def test_a_redelivered_event_changes_nothing(touchpoint_factory: TouchpointFactory) -> None:
    tp = touchpoint_factory("rework", 0, department="maintenance")
    books, log = play([tp, tp])
    assert log[1].duplicate and not log[1]
    assert len(only_journey(books).events) == 1


def test_a_touchpoint_for_another_key_is_refused(touchpoint_factory: TouchpointFactory) -> None:
    book = JourneyBook.for_touchpoint(touchpoint_factory("contact", 0, journey_id="case-1"))
    other = touchpoint_factory("contact", 0, journey_id="case-2")
    with pytest.raises(ValueError, match=r"'case-2'.*expected 'case-1'"):
        add(book, other, MODEL)


def test_the_book_round_trips_through_bytes(touchpoint_factory: TouchpointFactory) -> None:
    tps = [
        touchpoint_factory("contact", 0, channel="phone", wait_seconds=500),
        touchpoint_factory("promise_made", 1, promise_id="p1", due_at="2026-03-05T10:00:00Z"),
        touchpoint_factory("survey_response", 2, csat=4),
    ]
    books, _ = play(tps)
    raw = books["cust-1"].to_bytes()
    again = JourneyBook.from_bytes(raw)
    assert again == books["cust-1"]
    assert len(raw) < 1500
    # a decoded book keeps working: the duplicate is still recognised
    assert add(again, tps[0], MODEL).duplicate


def test_dormant_customer_journeys_retire_and_older_events_are_too_late(
    touchpoint_factory: TouchpointFactory,
) -> None:
    old = touchpoint_factory("contact", 0)
    new = touchpoint_factory("contact", 60 * 24)
    books, _ = play([old, new], until=at(61 * 24))
    book = books["cust-1"]
    assert len(book.journeys) == 1 and book.retired_until is not None
    late = touchpoint_factory("contact", 3)
    changes = add(book, late, MODEL)
    assert changes.too_late and book.too_late == 1 and not changes


@pytest.mark.parametrize("odd", [None, "", 0, "0", "x", 7])
def test_rule_groups_and_their_members_agree(odd: Any) -> None:
    from pipeline.journey.rules import group_keys, members, parse_group

    factory = TouchpointFactory()
    events = [
        stored_event(factory(kind, hours, **({} if odd is None else {name: odd})), MODEL)
        for hours, (kind, name) in enumerate(
            [("promise_made", "promise_id"), ("promise_kept", "promise_id"),
             ("case_opened", "case_id"), ("case_reopened", "case_id"),
             ("billing_dispute_opened", "dispute_id"), ("feedback_received", "feedback_id"),
             ("feedback_answered", "feedback_id"), ("contact", "x"), ("survey_response", "x")]
        )
    ]  # fmt: skip
    keys = {key for e in events for key in group_keys(e)}
    for key in keys:
        assert members(events, parse_group(key)) == [e for e in events if key in group_keys(e)], key


def test_rule_group_keys_decode_to_what_encoded_them() -> None:
    # Group keys are stored in every book: ids holding the separators must round-trip.
    from pipeline.journey.rules import (
        CASE,
        CONTACTS,
        OWN,
        PROMISE,
        SURVEY,
        GroupKey,
        obligation_group,
        own_group,
        parse_group,
        unnamed_obligation_group,
    )

    assert parse_group(CONTACTS) == GroupKey(CONTACTS, "", False)
    assert parse_group(SURVEY) == GroupKey(SURVEY, "", False)
    assert parse_group(own_group("ev:1#2")) == GroupKey(OWN, "ev:1#2", False)
    assert parse_group(obligation_group(CASE, "")) == GroupKey(CASE, "", False)
    assert parse_group(obligation_group(PROMISE, "p#1:x")) == GroupKey(PROMISE, "p#1:x", False)
    assert parse_group(unnamed_obligation_group(PROMISE, "e:9")) == GroupKey(PROMISE, "e:9", True)
