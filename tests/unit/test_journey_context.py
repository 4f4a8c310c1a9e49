"""A journey's context (what the context API answers) from its book: the timeline, what is
still open with its time left on the event-time clock, the signals and score, and what the
customer already told us; a function of the event set and the clock."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import Touchpoint
from pipeline.journey import JourneyBook, add, advance, load_score_model
from pipeline.journey.book import CUSTOMER_BOOK_PREFIX
from pipeline.journey.context import book_keys_for, customer_journeys, journey_context
from pipeline.journey.events import to_us

MODEL = load_score_model()
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HOUR_US = 3_600_000_000


def tp(n: int, type: str, hours: float, department: str = "customer_service",
       journey_id: str | None = "case-7", channel: str | None = "phone",
       **attributes: Any) -> Touchpoint:  # fmt: skip
    return Touchpoint(event_id=f"ev-{n:03d}", occurred_at=START + timedelta(hours=hours),
                      customer_id="cust-1", department=department, type=type,
                      journey_id=journey_id, channel=channel, attributes=attributes)  # fmt: skip


def book_of(touchpoints: list[Touchpoint]) -> JourneyBook:
    book = JourneyBook.for_touchpoint(touchpoints[0])
    for touchpoint in touchpoints:
        add(book, touchpoint, MODEL)
    return book


def at(hours: float) -> int:
    return to_us(START + timedelta(hours=hours))


BROKEN_BOILER = [
    tp(1, "contact", 0, reason="boiler makes a banging noise", resolved=False),
    tp(2, "handoff", 0.1, to_department="maintenance", context_transferred=False),
    tp(3, "promise_made", 0.2, department="maintenance", promise_id="visit-1",
       due_at=(START + timedelta(hours=48)).isoformat(), description="technician visit"),
    tp(4, "contact", 30, reason="when is the technician coming?", channel="chat"),
    tp(5, "feedback_received", 31, feedback_id="fb-1", sentiment=-0.6),
    tp(6, "case_opened", 31.5, department="maintenance", case_id="C-1"),
    tp(7, "promise_made", 32, department="billing", promise_id="credit-1",
       due_at=(START + timedelta(hours=30)).isoformat(), description="credit note"),
    tp(8, "promise_kept", 33, department="billing", promise_id="credit-1"),
]  # fmt: skip


def test_the_context_of_a_journey_with_an_open_promise_feedback_and_a_case() -> None:
    book = book_of(BROKEN_BOILER)
    context = journey_context(book, "case-7", MODEL, at(40))
    assert context is not None
    assert (context["journey_id"], context["customer_id"], context["status"]) == (
        "case-7", "cust-1", "open")  # fmt: skip
    assert context["as_of"] == (START + timedelta(hours=40)).isoformat()
    timeline = context["timeline"]
    assert [e["event_id"] for e in timeline] == [f"ev-{n:03d}" for n in range(1, 9)]
    assert timeline[0] | {"attributes": None} == {
        "event_id": "ev-001", "occurred_at": START.isoformat(), "type": "contact",
        "department": "customer_service", "stage": "service", "channel": "phone",
        "said": "boiler makes a banging noise", "attributes": None,
    }  # fmt: skip
    assert timeline[2]["said"] == "technician visit"
    # The credit note was kept (late: signals say so); the visit is open, 8 hours left.
    (visit,) = context["open_promises"]
    assert visit == {
        "promise_id": "visit-1", "description": "technician visit", "department": "maintenance",
        "stage": "service", "made_at": (START + timedelta(hours=0.2)).isoformat(),
        "due_at": (START + timedelta(hours=48)).isoformat(), "seconds_left": 8 * 3600,
        "overdue": False,
    }  # fmt: skip
    (feedback,) = context["unanswered_feedback"]
    assert feedback["feedback_id"] == "fb-1"
    assert feedback["answer_by"] == (START + timedelta(hours=31, days=5)).isoformat()
    assert feedback["seconds_left"] == (5 * 24 - 9) * 3600
    (case,) = context["open_cases"]
    assert (case["case_id"], case["department"], case["overdue"]) == ("C-1", "maintenance", False)
    assert context["open_disputes"] == []
    kinds = {s["signal"]: s for s in context["signals"]}
    assert {"context_lost", "repeat_contact", "promise_kept_late"} <= set(kinds)
    assert kinds["context_lost"]["department"] == "customer_service"
    assert kinds["context_lost"]["impact"] == -6
    assert context["score"] == 100 - 6 - 8 - 5
    assert context["band"] == "good"
    assert [c["reason"] for c in context["already_told_us"]] == [
        "boiler makes a banging noise", "when is the technician coming?"]  # fmt: skip
    assert context["already_told_us"][1]["channel"] == "chat"
    json.dumps(context)  # JSON-able as it is


def test_a_promise_past_due_stays_open_overdue_and_is_broken_among_the_signals() -> None:
    book = book_of(BROKEN_BOILER)
    advance(book, START + timedelta(hours=50), MODEL)  # what the worker's clock does
    context = journey_context(book, "case-7", MODEL, at(50))
    assert context is not None
    (visit,) = context["open_promises"]
    assert (visit["seconds_left"], visit["overdue"]) == (-2 * 3600, True)
    broken = [s for s in context["signals"] if s["signal"] == "promise_broken"]
    assert [s["department"] for s in broken] == ["maintenance"]
    assert context["band"] == "neutral"  # 81 - 15


def test_time_left_counts_from_the_later_of_the_partition_clock_and_the_book_clock() -> None:
    book = book_of(BROKEN_BOILER)  # book clock: 33 h
    behind = journey_context(book, "case-7", MODEL, at(10))
    assert behind is not None and behind["open_promises"][0]["seconds_left"] == 15 * 3600


def test_kept_answered_resolved_are_not_open() -> None:
    book = book_of([
        *BROKEN_BOILER,
        tp(9, "promise_kept", 40, department="maintenance", promise_id="visit-1"),
        tp(10, "feedback_answered", 41, feedback_id="fb-1"),
        tp(11, "case_resolved", 42, department="maintenance", case_id="C-1"),
        tp(12, "billing_dispute_opened", 43, department="billing", dispute_id="D-1"),
    ])  # fmt: skip
    context = journey_context(book, "case-7", MODEL, at(44))
    assert context is not None
    assert (context["open_promises"], context["unanswered_feedback"], context["open_cases"]) == (
        [], [], [])  # fmt: skip
    (dispute,) = context["open_disputes"]
    assert dispute["dispute_id"] == "D-1" and dispute["department"] == "billing"
    reopened = book_of([*BROKEN_BOILER, tp(9, "case_resolved", 40, case_id="C-1"),
                        tp(10, "case_reopened", 41, case_id="C-1")])  # fmt: skip
    again = journey_context(reopened, "case-7", MODEL, at(42))
    assert again is not None and again["open_cases"][0]["reopened"] is True


def test_a_journey_the_book_does_not_hold_has_no_context() -> None:
    assert journey_context(book_of(BROKEN_BOILER), "case-8", MODEL, at(40)) is None


def test_a_customer_journey_is_found_by_its_derived_id_in_the_customer_book() -> None:
    touchpoints = [tp(1, "contact", 0, journey_id=None, reason="wrong invoice"),
                   tp(2, "contact", 24 * 30, journey_id=None, reason="moving house")]  # fmt: skip
    book = book_of(touchpoints)
    first, second = (j.journey_id for j in book.journeys)
    assert book_keys_for(first) == [CUSTOMER_BOOK_PREFIX + "cust-1", first]
    assert book_keys_for("case-7") == ["case-7"]
    assert book_keys_for("we@ird@2026-03-01T09:00:00Z#0a1b2c3d")[0] == (
        CUSTOMER_BOOK_PREFIX + "we@ird")  # fmt: skip
    context = journey_context(book, second, MODEL, at(24 * 30))
    assert context is not None and context["already_told_us"][0]["reason"] == "moving house"
    summaries = customer_journeys([(book, at(24 * 30))], "cust-1", MODEL, open_only=False)
    assert [s["journey_id"] for s in summaries] == [first, second]
    assert [s["status"] for s in summaries] == ["closed", "open"]
    opened = customer_journeys([(book, at(24 * 30))], "cust-1", MODEL, open_only=True)
    assert [s["journey_id"] for s in opened] == [second]
    assert customer_journeys([(book, at(1))], "cust-2", MODEL, open_only=False) == []


def test_a_summary_counts_what_is_open() -> None:
    (summary,) = customer_journeys([(book_of(BROKEN_BOILER), at(40))], "cust-1", MODEL,
                                   open_only=True)  # fmt: skip
    assert (summary["open_promises"], summary["unanswered_feedback"], summary["open_cases"]) == (
        1, 1, 1)  # fmt: skip
    assert summary["next_promise_due_at"] == (START + timedelta(hours=48)).isoformat()


# --- properties ----------------------------------------------------------------------------
KINDS = ("contact", "promise_made", "promise_kept", "feedback_received", "feedback_answered",
         "case_opened", "case_resolved", "case_reopened", "handoff", "rework")  # fmt: skip


@st.composite
def journeys(draw: st.DrawFn) -> list[Touchpoint]:
    found = []
    for n in range(draw(st.integers(1, 15))):
        kind = draw(st.sampled_from(KINDS))
        attributes: dict[str, Any] = {}
        if kind.startswith("promise_"):
            attributes["promise_id"] = draw(st.sampled_from(["p1", "p2"]))
            if kind == "promise_made":
                attributes["due_at"] = (START + timedelta(hours=draw(st.integers(0, 200)))
                                        ).isoformat()  # fmt: skip
        elif kind.startswith("feedback_"):
            attributes["feedback_id"] = draw(st.sampled_from(["f1", "f2"]))
        elif kind.startswith("case_"):
            attributes["case_id"] = draw(st.sampled_from(["c1", "c2"]))
        elif kind == "contact":
            attributes["reason"] = draw(st.sampled_from(["", "noise", "invoice"]))
        found.append(tp(n, kind, draw(st.integers(0, 200)), department=draw(
            st.sampled_from(["sales", "billing", "maintenance"])), **attributes))  # fmt: skip
    return found


@settings(max_examples=300, deadline=None)
@given(journeys(), st.randoms(use_true_random=False), st.integers(0, 400))
def test_the_context_is_a_function_of_the_event_set_and_the_clock(
    touchpoints: list[Touchpoint], shuffle: random.Random, clock_hours: int
) -> None:
    again = touchpoints + touchpoints[: len(touchpoints) // 2]  # duplicates
    shuffle.shuffle(again)
    one, other = book_of(touchpoints), book_of(again)
    clock = at(clock_hours)
    assert journey_context(one, "case-7", MODEL, clock) == journey_context(
        other, "case-7", MODEL, clock)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(journeys(), st.integers(0, 400))
def test_every_promise_made_and_not_kept_is_open_once_with_its_time_left(
    touchpoints: list[Touchpoint], clock_hours: int
) -> None:
    context = journey_context(book_of(touchpoints), "case-7", MODEL, at(clock_hours))
    assert context is not None
    kept = {t.attributes["promise_id"] for t in touchpoints if t.type == "promise_kept"}
    made = {t.attributes["promise_id"] for t in touchpoints if t.type == "promise_made"}
    listed = [p["promise_id"] for p in context["open_promises"]]
    assert sorted(listed) == sorted(made - kept)
    as_of = datetime.fromisoformat(context["as_of"])
    for promise in context["open_promises"]:
        due = datetime.fromisoformat(promise["due_at"])
        assert promise["seconds_left"] == (due - as_of) // timedelta(seconds=1)
        assert promise["overdue"] is (as_of > due)
    answered = {t.attributes["feedback_id"] for t in touchpoints if t.type == "feedback_answered"}
    received = {t.attributes["feedback_id"] for t in touchpoints if t.type == "feedback_received"}
    assert sorted(f["feedback_id"] for f in context["unanswered_feedback"]) == sorted(
        received - answered)  # fmt: skip
    timeline = context["timeline"]
    assert len(timeline) == len({t.event_id for t in touchpoints}) == context["touchpoint_count"]
    assert [e["occurred_at"] for e in timeline] == sorted(e["occurred_at"] for e in timeline)
    told = [e for e in timeline if e["type"] == "contact" and e["said"]]
    assert [c["reason"] for c in context["already_told_us"]] == [e["said"] for e in told]
    json.dumps(context)
