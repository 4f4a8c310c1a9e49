"""Invariants over generated multi-department journeys (hypothesis, 500 examples each).

The score must be a function of the event set, the model and the event-time clock:
order, duplicates and the size of clock steps must not matter, deadlines fire once, and
every point is attributed to a department.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import Touchpoint
from pipeline.journey import Changes, JourneyBook, JourneyScore, Signal, add, advance
from pipeline.journey.events import EPOCH
from pipeline.journey.rules import Context
from pipeline.journey.scoring import department_points
from pipeline.journey.state import build_journey
from tests.support.touchpoints import MODEL, START, play

EXAMPLES = settings(max_examples=500, deadline=None)
DEPARTMENTS = ("sales", "customer_service", "maintenance", "billing", "delivery")
SPAN_QUARTER_HOURS = 40 * 24 * 4  # 40 days: below the 45-day retention, over the 14-day gap
UNTIL = START + timedelta(days=80)


def _when(quarter_hours: int) -> datetime:
    return START + timedelta(minutes=15 * quarter_hours)


def _attributes(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    ids = {"p": "promise_id", "f": "feedback_id", "c": "case_id", "d": "dispute_id"}
    if kind == "contact":
        return st.fixed_dictionaries(
            {}, optional={"resolved": st.booleans(), "wait_seconds": st.integers(0, 2000)}
        )
    if kind == "handoff":
        return st.fixed_dictionaries({"to_department": st.sampled_from(DEPARTMENTS),
                                      "context_transferred": st.booleans()})  # fmt: skip
    if kind == "promise_made":
        return st.fixed_dictionaries({
            "promise_id": st.sampled_from(["p1", "p2"]),
            "due_at": st.integers(0, SPAN_QUARTER_HOURS).map(lambda q: _when(q).isoformat()),
            "description": st.just("a call back"),
        })  # fmt: skip
    if kind == "survey_response":
        return st.fixed_dictionaries(
            {},
            optional={
                "csat": st.integers(1, 5),
                "nps": st.integers(0, 10),
                "ces": st.integers(1, 7),
            },
        )
    prefix = {"promise_kept": "p", "feedback_received": "f", "feedback_answered": "f"}.get(
        kind, "d" if "dispute" in kind else "c" if kind.startswith("case") else ""
    )
    if prefix:
        return st.fixed_dictionaries({ids[prefix]: st.sampled_from([f"{prefix}1", f"{prefix}2"])})
    return st.just({})


KINDS = (
    "contact", "contact", "contact", "handoff", "promise_made", "promise_kept", "promise_made",
    "case_opened", "case_resolved", "case_reopened", "billing_dispute_opened",
    "billing_dispute_resolved", "feedback_received", "feedback_answered", "rework",
    "invoice_corrected", "order_delayed", "proactive_update", "survey_response",
    "journey_closed", "order_placed",
)  # fmt: skip


@st.composite
def touchpoints(draw: st.DrawFn) -> list[Touchpoint]:
    """A customer's touchpoints across departments, some keyed by a case number."""
    found = []
    for index in range(draw(st.integers(1, 20))):
        kind = draw(st.sampled_from(KINDS))
        found.append(Touchpoint(
            event_id=f"e{index:02d}",
            # a coarse grid so that equal timestamps (ordered by event_id) occur
            occurred_at=_when(draw(st.integers(0, SPAN_QUARTER_HOURS // 8)) * 8),
            customer_id="cust-1",
            department=draw(st.sampled_from(DEPARTMENTS)),
            type=kind,
            journey_id=draw(st.sampled_from([None, None, "case-9"])),
            channel=draw(st.sampled_from([None, "phone", "chat", "email"])),
            attributes=draw(_attributes(kind)),
        ))  # fmt: skip
    return found


def final_state(books: dict[str, JourneyBook]) -> dict[str, Any]:
    """Scores (without the clock stamp) and signals of every journey."""
    return {
        s.journey_id: msgspec.structs.replace(s, updated_at=EPOCH)
        for book in books.values()
        for s in book.scores(MODEL)
    }


def active_signals(log: list[Changes]) -> dict[str, Signal]:
    """The signals the change log leaves active (retractions applied in order)."""
    active: dict[str, Signal] = {}
    for changes in log:
        for s in changes.retracted:
            active.pop(s.signal_id, None)
        active.update((s.signal_id, s) for s in changes.appeared)
    return active


def live(tps: list[Touchpoint], steps: int) -> tuple[dict[str, JourneyBook], list[Changes]]:
    """Events in time order with the clock advanced in small steps in between, to UNTIL."""
    ordered = sorted(tps, key=lambda t: (t.occurred_at, t.event_id))
    books: dict[str, JourneyBook] = {}
    log: list[Changes] = []
    clock = START
    for tp in ordered:
        while clock + timedelta(hours=steps) < tp.occurred_at:
            clock += timedelta(hours=steps)
            log.extend(advance(b, clock, MODEL) for b in books.values())
        book = books.setdefault(tp.key, JourneyBook.for_touchpoint(tp))
        log.append(add(book, tp, MODEL))
    while clock < UNTIL:
        clock = min(clock + timedelta(hours=steps), UNTIL)
        log.extend(advance(b, clock, MODEL) for b in books.values())
    return books, log


def shuffled_with_ticks(
    tps: list[Touchpoint], random: Any, ticks: list[float]
) -> tuple[dict[str, JourneyBook], list[Changes]]:
    """The events in a shuffled order, the clock advanced at random points in between."""
    low, high = min(t.occurred_at for t in tps), max(t.occurred_at for t in tps)
    plan: list[Touchpoint | datetime] = [*tps, *(low + (high - low) * f for f in ticks)]
    random.shuffle(plan)
    books: dict[str, JourneyBook] = {}
    log: list[Changes] = []
    for step in plan:
        if isinstance(step, Touchpoint):
            book = books.setdefault(step.key, JourneyBook.for_touchpoint(step))
            log.append(add(book, step, MODEL))
        else:
            log.extend(advance(book, step, MODEL) for book in books.values())
    log.extend(advance(book, high, MODEL) for book in books.values())
    return books, log


@EXAMPLES
@given(touchpoints(), st.randoms(use_true_random=False), st.lists(st.floats(0, 1), max_size=6))
def test_any_order_gives_the_same_signals_and_scores(
    tps: list[Touchpoint], random: Any, ticks: list[float]
) -> None:
    in_order = sorted(tps, key=lambda t: (t.occurred_at, t.event_id))
    books, log = play(in_order, until=max(t.occurred_at for t in tps))
    books_shuffled, log_shuffled = shuffled_with_ticks(tps, random, ticks)
    assert final_state(books_shuffled) == final_state(books)
    assert active_signals(log_shuffled) == active_signals(log)
    expected = {s.signal_id: s for b in books.values() for j in b.journeys for s in j.signals()}
    assert active_signals(log) == expected  # the log tells the same story as the state
    for book in books_shuffled.values():  # incremental updates equal a from-scratch build
        for journey in book.journeys:
            ctx = Context(journey.journey_id, book.customer_id, MODEL, book.clock)
            scratch = build_journey(journey.journey_id, journey.events, ctx, 1000)
            assert (scratch.groups, scratch.deadlines, scratch.survey) == (
                journey.groups, journey.deadlines, journey.survey
            )  # fmt: skip


@EXAMPLES
@given(touchpoints(), st.data())
def test_redelivered_events_change_nothing(tps: list[Touchpoint], data: st.DataObject) -> None:
    with_duplicates = tps[:]
    for _ in range(data.draw(st.integers(1, 10))):
        again = data.draw(st.sampled_from(tps))
        first = with_duplicates.index(again)
        with_duplicates.insert(data.draw(st.integers(first + 1, len(with_duplicates))), again)
    books, log = play(with_duplicates, until=UNTIL)
    reference, reference_log = play(tps, until=UNTIL)
    assert final_state(books) == final_state(reference)
    assert active_signals(log) == active_signals(reference_log)
    duplicates = [c for c in log if c.duplicate]
    assert len(duplicates) == len(with_duplicates) - len(tps)
    assert not any(duplicates)


@EXAMPLES
@given(touchpoints(), st.integers(4, 72))
def test_small_clock_steps_equal_one_step(tps: list[Touchpoint], hours: int) -> None:
    stepped, stepped_log = live(tps, hours)
    replayed, replayed_log = play(tps, until=UNTIL)
    assert final_state(stepped) == final_state(replayed)
    assert active_signals(stepped_log) == active_signals(replayed_log)


def _journey_of(log: list[Changes]) -> dict[str, str]:
    """Each event's journey as the change log finally assigned it."""
    found: dict[str, str] = {}
    for changes in log:
        if changes.assignment is not None:
            found[changes.assignment.event_id] = changes.assignment.journey_id
        found.update((a.event_id, a.journey_id) for a in changes.moved)
    return found


def _kept_on_time(tps: list[Touchpoint], journey_of: dict[str, str]) -> set[str]:
    """Ids of promise_made events whose promise was kept, in its journey, by its due time."""
    found = set()
    for made in (t for t in tps if t.type == "promise_made"):
        pid, due = made.attributes["promise_id"], datetime.fromisoformat(made.attributes["due_at"])
        same = [
            t
            for t in tps
            if journey_of[t.event_id] == journey_of[made.event_id]
            and t.attributes.get("promise_id") == pid
        ]
        first_made = min(
            (t for t in same if t.type == "promise_made"), key=lambda t: (t.occurred_at, t.event_id)
        )
        kept = [t.occurred_at for t in same if t.type == "promise_kept"]
        if first_made is made and kept and min(kept) <= due:
            found.add(made.event_id)
    return found


@EXAMPLES
@given(touchpoints(), st.integers(4, 72))
def test_deadlines_fire_once_and_never_for_promises_kept_in_time(
    tps: list[Touchpoint], hours: int
) -> None:
    _, log = live(tps, hours)
    fired = [s for c in log for s in c.appeared if s.signal == "promise_broken"]
    assert len({s.signal_id for s in fired}) == len(fired)  # each reported once
    kept = _kept_on_time(tps, _journey_of(log))
    assert not [s for s in fired if s.evidence_event_ids[0] in kept]
    for kind in ("feedback_unanswered", "slow_resolution"):
        ids = [s.signal_id for c in log for s in c.appeared if s.signal == kind]
        assert len(set(ids)) == len(ids)


def _check_attribution(score: JourneyScore) -> None:
    points = department_points(score)
    net = sum(gained - lost for lost, gained in points.values())
    assert abs(net - sum(s.impact for s in score.signals)) < 1e-9
    assert abs(min(max(100 + net, 0), 100) - score.operational_score) < 0.006
    assert abs(sum(lost for lost, _ in points.values()) - score.lost_points) < 0.006
    assert abs(sum(g for _, g in points.values()) - score.gained_points) < 0.006
    beyond = sum(lost for d, (lost, _) in points.items() if d not in MODEL.front_desk)
    assert abs(beyond - score.lost_points_beyond_front_desk) < 0.006
    assert (
        score.worst_department == ""
        if not score.lost_points
        else points[score.worst_department][0] == max(lost for lost, _ in points.values())
    )


@EXAMPLES
@given(touchpoints())
def test_attribution_adds_up(tps: list[Touchpoint]) -> None:
    _, log = play(tps, until=UNTIL)
    for changes in log:
        for score in changes.scores:
            _check_attribution(score)


def play_through_bytes(tps: list[Touchpoint]) -> tuple[dict[str, JourneyBook], list[Changes]]:
    """Like `play`, but every book is encoded and decoded around each event (a table)."""
    stored: dict[str, bytes] = {}
    log: list[Changes] = []
    for tp in tps:
        raw = stored.get(tp.key)
        book = JourneyBook.from_bytes(raw) if raw else JourneyBook.for_touchpoint(tp)
        log.append(add(book, tp, MODEL))
        stored[tp.key] = book.to_bytes()
    return {key: JourneyBook.from_bytes(raw) for key, raw in stored.items()}, log


@settings(max_examples=200, deadline=None)
@given(touchpoints())
def test_state_through_bytes_behaves_like_state_in_memory(tps: list[Touchpoint]) -> None:
    # the caches a book keeps in memory must never change an outcome
    books, log = play(tps)
    decoded, decoded_log = play_through_bytes(tps)
    assert decoded == books
    assert [msgspec.structs.replace(c, scores=[]) for c in decoded_log] == [
        msgspec.structs.replace(c, scores=[]) for c in log
    ]
    assert [c.scores for c in decoded_log] == [c.scores for c in log]


@settings(max_examples=200, deadline=None)
@given(touchpoints(), st.integers(2, 8), st.randoms(use_true_random=False))
def test_past_the_cap_a_case_is_scored_on_its_first_events_in_any_order(
    tps: list[Touchpoint], cap: int, random: Any
) -> None:
    model = replace(MODEL, max_events_per_journey=cap)
    case = [msgspec.structs.replace(t, journey_id="case-1") for t in tps]
    shuffled = case[:]
    random.shuffle(shuffled)
    books, _ = play(case, model=model)
    again, _ = play(shuffled, model=model)
    (journey,), (other,) = books["case-1"].journeys, again["case-1"].journeys
    first = sorted(case, key=lambda t: (t.occurred_at, t.event_id))[:cap]
    assert [e.id for e in journey.events] == [t.event_id for t in first]
    assert (other.events, other.groups, other.survey) == (
        journey.events, journey.groups, journey.survey
    )  # fmt: skip
