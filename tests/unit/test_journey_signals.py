"""One test per signal of score model v1: impact, attribution, evidence, time and reason."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.journey import Signal
from tests.support.touchpoints import MODEL, TouchpointFactory, at, only_journey, play

TF = TouchpointFactory


def signals_of(tps: list, until: datetime | None = None) -> list[Signal]:
    books, _ = play(tps, until=until)
    return only_journey(books).signals()


def the(signals: list[Signal], kind: str) -> Signal:
    found = [s for s in signals if s.signal == kind]
    assert len(found) == 1, [s.signal for s in signals]
    return found[0]


def test_repeat_contact_is_attributed_to_the_unresolved_contact(touchpoint_factory: TF) -> None:
    first = touchpoint_factory(
        "contact", 0, channel="phone", department="customer_service", resolved=False
    )
    again = touchpoint_factory("contact", 48, channel="chat", department="sales", resolved=True)
    s = the(signals_of([first, again]), "repeat_contact")
    assert (s.department, s.stage, s.impact) == ("customer_service", "service", -8)
    assert s.evidence_event_ids == [first.event_id, again.event_id]
    assert s.effective_at == at(48)
    assert s.reason == (
        "Customer had to explain again: contacted sales on 2026-03-03 09:00 UTC after an "
        "unresolved phone contact with customer_service on 2026-03-01 09:00 UTC"
    )
    assert s.score_model == "v1"


def test_no_repeat_contact_after_seven_days_or_after_a_resolved_contact(
    touchpoint_factory: TF,
) -> None:
    tps = [
        touchpoint_factory("contact", 0, resolved=False),
        touchpoint_factory("contact", 7 * 24 + 1, resolved=True),  # too late to be a repeat
        touchpoint_factory("contact", 7 * 24 + 2, resolved=False),  # previous was resolved
    ]
    assert [s.signal for s in signals_of(tps)] == []


def test_first_contact_resolution(touchpoint_factory: TF) -> None:
    tp = touchpoint_factory(
        "contact", 1, channel="phone", department="sales", stage="purchase", resolved=True
    )
    s = the(signals_of([tp]), "first_contact_resolution")
    assert (s.department, s.stage, s.impact, s.evidence_event_ids) == (
        "sales",
        "purchase",
        3,
        [tp.event_id],
    )
    assert (
        s.reason == "Phone contact on 2026-03-01 10:00 UTC resolved the need at the first contact"
    )


def test_no_first_contact_resolution_after_an_unresolved_contact(touchpoint_factory: TF) -> None:
    unresolved = touchpoint_factory("contact", 0, resolved=False)
    # 8 days later: the same journey, too late to be a repeat contact, but not a first one
    later = touchpoint_factory("contact", 8 * 24, resolved=True)
    assert [s.signal for s in signals_of([unresolved, later])] == []
    # 15 days later (past the 14-day gap) it opens a new journey and resolves it at once
    new_need = touchpoint_factory("contact", 15 * 24, resolved=True)
    books, _ = play([unresolved, new_need])
    kinds = [[s.signal for s in j.signals()] for j in books["cust-1"].journeys]
    assert kinds == [[], ["first_contact_resolution"]]


def test_context_lost_is_attributed_to_the_handing_off_department(touchpoint_factory: TF) -> None:
    tp = touchpoint_factory(
        "handoff",
        2,
        department="customer_service",
        to_department="maintenance",
        context_transferred=False,
    )
    s = the(signals_of([tp]), "context_lost")
    assert (s.department, s.impact, s.evidence_event_ids) == ("customer_service", -6, [tp.event_id])
    assert s.reason == (
        "Handoff from customer_service to maintenance on 2026-03-01 11:00 UTC lost the "
        "context: the customer had to explain again"
    )
    kept = touchpoint_factory("handoff", 3, to_department="maintenance", context_transferred=True)
    assert signals_of([kept]) == []


@pytest.mark.parametrize(
    ("channel", "wait", "impact", "times"),
    [("phone", 120, None, 0), ("phone", 121, -2, 1), ("phone", 300, -4, 2), ("phone", 3600, -8, 29),
     ("chat", 61, -2, 1), (None, 301, -2, 1), ("email", 3 * 86400, -4, 2)],
)  # fmt: skip
def test_long_wait_costs_two_points_per_threshold_at_most_eight(
    touchpoint_factory: TF, channel: str | None, wait: int, impact: float | None, times: int
) -> None:
    tp = touchpoint_factory(
        "contact", 0, department="billing", channel=channel, wait_seconds=wait, resolved=True
    )
    waits = [s for s in signals_of([tp]) if s.signal == "long_wait"]
    if impact is None:
        assert waits == []
        return
    (s,) = waits
    assert (s.department, s.impact, s.evidence_event_ids) == ("billing", impact, [tp.event_id])
    assert f"threshold {times} time" in s.reason


def test_long_wait_reason(touchpoint_factory: TF) -> None:
    tp = touchpoint_factory("contact", 0, channel="phone", wait_seconds=600, resolved=True)
    assert the(signals_of([tp]), "long_wait").reason == (
        "Customer waited 10 min on phone with customer_service on 2026-03-01 09:00 UTC: "
        "over the 2 min threshold 4 times"
    )


def promise(tf: TF, department: str = "maintenance") -> list:
    return [
        tf("promise_made", 0, department=department, promise_id="p1",
           due_at="2026-03-02T10:00:00+00:00", description="technician visit"),
    ]  # fmt: skip


def test_promise_broken_fires_at_the_due_time(touchpoint_factory: TF) -> None:
    tps = promise(touchpoint_factory)
    assert signals_of(tps, until=at(25)) == []  # due at hour 25: not yet past
    s = the(signals_of(tps, until=at(25.01)), "promise_broken")
    assert (s.department, s.stage, s.impact) == ("maintenance", "service", -15)
    assert s.evidence_event_ids == [tps[0].event_id] and s.effective_at == at(25)
    assert s.reason == "Promise 'technician visit' due 2026-03-02 10:00 UTC was not kept"


def test_promise_kept_on_time(touchpoint_factory: TF) -> None:
    tps = promise(touchpoint_factory)
    tps.append(touchpoint_factory("promise_kept", 25, department="maintenance", promise_id="p1"))
    s = the(signals_of(tps, until=at(100)), "promise_kept")
    assert (s.department, s.impact, s.effective_at) == ("maintenance", 2, at(25))
    assert s.evidence_event_ids == [tps[0].event_id, tps[1].event_id]
    assert s.reason == "Promise 'technician visit' due 2026-03-02 10:00 UTC was kept on time"


def test_a_late_promise_kept_turns_broken_into_kept_late(touchpoint_factory: TF) -> None:
    tps = promise(touchpoint_factory, department="delivery")
    books, log = play(tps, until=at(30))
    broken = the(log[-1].appeared, "promise_broken")
    book = books["cust-1"]
    from pipeline.journey import add

    changes = add(
        book, touchpoint_factory("promise_kept", 40, department="field", promise_id="p1"), MODEL
    )
    assert changes.retracted == [broken]
    late = the(changes.appeared, "promise_kept_late")
    assert (late.department, late.impact, late.effective_at) == ("delivery", -5, at(40))
    assert late.reason == (
        "Promise 'technician visit' due 2026-03-02 10:00 UTC was kept late, on 2026-03-03 01:00 UTC"
    )


def test_feedback_unanswered_after_five_days(touchpoint_factory: TF) -> None:
    fb = touchpoint_factory(
        "feedback_received", 0, department="billing", stage="billing", feedback_id="f9"
    )
    assert signals_of([fb], until=at(5 * 24)) == []
    s = the(signals_of([fb], until=at(5 * 24 + 1)), "feedback_unanswered")
    assert (s.department, s.stage, s.impact, s.effective_at) == ("billing", "billing", -10, at(120))
    assert s.reason == "Feedback 'f9' received 2026-03-01 09:00 UTC was not answered within 5 days"
    answered = touchpoint_factory(
        "feedback_answered", 5 * 24, department="billing", feedback_id="f9"
    )
    assert signals_of([fb, answered], until=at(500)) == []
    answered_late = touchpoint_factory(
        "feedback_answered", 6 * 24, department="billing", feedback_id="f9"
    )
    assert the(signals_of([fb, answered_late]), "feedback_unanswered").impact == -10


@pytest.mark.parametrize(
    ("kind", "attrs", "reason"),
    [
        ("rework", {"reason": "repeat repair"}, "Work had to be redone on {}: repeat repair"),
        ("invoice_corrected", {"invoice_id": "INV-3"}, "Invoice INV-3 had to be corrected on {}"),
        ("case_reopened", {"case_id": "C-1"}, "Case C-1 was reopened on {}"),
        ("appointment_missed", {"appointment_id": "A-2"}, "Appointment A-2 was missed on {}"),
        ("order_delayed", {"order_id": "O-5"}, "Order O-5 was delayed on {}"),
    ],
)  # fmt: skip
def test_rework_is_attributed_to_the_emitting_department(
    touchpoint_factory: TF, kind: str, attrs: dict, reason: str
) -> None:
    tp = touchpoint_factory(kind, 4, department="maintenance", **attrs)
    s = the(signals_of([tp]), "rework")
    assert (s.department, s.impact, s.evidence_event_ids, s.effective_at) == (
        "maintenance", -10, [tp.event_id], at(4)
    )  # fmt: skip
    assert s.reason == reason.format("2026-03-01 13:00 UTC")


def test_slow_resolution_uses_the_opening_departments_target(touchpoint_factory: TF) -> None:
    opened = touchpoint_factory("case_opened", 0, department="customer_service", case_id="C-7")
    assert signals_of([opened], until=at(48)) == []  # customer_service target: 48 h
    s = the(signals_of([opened], until=at(49)), "slow_resolution")
    assert (s.department, s.impact, s.effective_at, s.evidence_event_ids) == (
        "customer_service", -5, at(48), [opened.event_id]
    )  # fmt: skip
    assert s.reason == (
        "Case 'C-7' opened 2026-03-01 09:00 UTC was not resolved within the 48 h target of "
        "customer_service"
    )
    resolved = touchpoint_factory("case_resolved", 47, department="maintenance", case_id="C-7")
    assert signals_of([opened, resolved], until=at(500)) == []


def test_slow_billing_dispute(touchpoint_factory: TF) -> None:
    opened = touchpoint_factory("billing_dispute_opened", 0, department="billing", dispute_id="D-1")
    late = touchpoint_factory(
        "billing_dispute_resolved", 200, department="billing", dispute_id="D-1"
    )
    s = the(signals_of([opened, late]), "slow_resolution")
    assert s.effective_at == at(120) and s.stage == "billing"
    assert s.reason.startswith("Billing dispute 'D-1' opened 2026-03-01 09:00 UTC was not resolved")


def test_fast_fix_of_a_dispute_and_of_a_reopened_case(touchpoint_factory: TF) -> None:
    tps = [
        touchpoint_factory("billing_dispute_opened", 0, department="billing", dispute_id="D-1"),
        touchpoint_factory("billing_dispute_resolved", 5, department="billing", dispute_id="D-1"),
    ]
    s = the(signals_of(tps), "fast_fix")
    assert (s.department, s.impact, s.effective_at) == ("billing", 3, at(5))
    assert s.reason == "Billing dispute 'D-1' was resolved within 24 h (in 5 h)"
    case = [
        touchpoint_factory("case_opened", 0, case_id="C-2"),
        touchpoint_factory("case_resolved", 10, department="maintenance", case_id="C-2"),
        touchpoint_factory("case_reopened", 30, department="customer_service", case_id="C-2"),
        touchpoint_factory("case_resolved", 40, department="maintenance", case_id="C-2"),
    ]
    found = signals_of(case)
    assert the(found, "fast_fix").department == "maintenance"
    assert the(found, "fast_fix").evidence_event_ids == [case[2].event_id, case[3].event_id]
    assert the(found, "rework").department == "customer_service"
    slow = touchpoint_factory(
        "billing_dispute_resolved", 25, department="billing", dispute_id="D-1"
    )
    assert [s.signal for s in signals_of([tps[0], slow])] == []


def test_proactive_update(touchpoint_factory: TF) -> None:
    tp = touchpoint_factory(
        "proactive_update", 3, department="delivery", stage="delivery", about="parcel delayed"
    )
    s = the(signals_of([tp]), "proactive_update")
    assert (s.department, s.stage, s.impact) == ("delivery", "delivery", 4)
    assert s.reason == "Customer was told before asking: parcel delayed"


def test_signal_ids_are_stable_across_replays(touchpoint_factory: TF) -> None:
    tps = promise(touchpoint_factory)
    first = signals_of(tps, until=at(100))
    assert first == signals_of(list(reversed(tps)), until=at(100))
    assert len(first[0].signal_id) == 20
