"""A journey's context: what a department's system shows an agent so that the customer need
not explain again. Pure: a book, a journey id and an event-time clock in, a JSON-able
value out (the worker's context API serves it; `pipeline.stream.context`).

What is open is read from the journey's events, so an answer is a function of the event
set and the clock like everything else the engine says:

- a promise is open while no `promise_kept` names it; past its `due_at` it stays listed
  with `overdue: true` (the customer still waits), and its `promise_broken` signal is
  among the signals once the clock passed the deadline;
- feedback is unanswered while no `feedback_answered` names it; its deadline is
  `received_at` plus the model's answer window;
- a case or billing dispute is open when its latest (re)opening has no resolution after
  it; `resolve_by` is that opening plus the opening department's resolution target.

`seconds_left` counts from `as_of`, the later of the partition's event-time clock and the
book's own: the clock that fires `promise_broken`, so "0 seconds left" and "broken" agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from pipeline.journey.book import CUSTOMER_BOOK_PREFIX, ESCAPED_JOURNEY_PREFIX, JourneyBook
from pipeline.journey.events import StoredEvent, from_us
from pipeline.journey.model import ScoreModel
from pipeline.journey.rules import (
    FEEDBACK,
    PROMISE,
    GroupKey,
    group_keys,
    members,
    parse_group,
)
from pipeline.journey.scoring import snapshot
from pipeline.journey.state import JourneyState

JSON = dict[str, Any]

# What `segments.derive_journey_id` makes of a customer's journey without journey_id:
# `<customer_id>@<first event, UTC, to the second>Z#<8 hex>`.
_DERIVED = re.compile(r"^(?P<customer>.+)@-?\d{1,5}-\d\d-\d\dT\d\d:\d\d:\d\dZ#[0-9a-f]{8}$", re.S)
# The text a department gave with an event, by the attribute that carries it.
_SAID = ("reason", "description", "about", "outcome")
_OPENS = {"c": ("case_opened", "case_reopened"), "d": ("billing_dispute_opened",)}
_RESOLVES = {"c": "case_resolved", "d": "billing_dispute_resolved"}
_ID_OF = {"c": "case_id", "d": "dispute_id"}


def book_keys_for(journey_id: str) -> list[str]:
    """The book keys that may hold `journey_id`, the likelier first: a derived id's
    customer book, then the book of an emitted journey_id (which may look derived)."""
    own = journey_id if journey_id[:1] != "\x00" else ESCAPED_JOURNEY_PREFIX + journey_id
    derived = _DERIVED.match(journey_id)
    return [CUSTOMER_BOOK_PREFIX + derived["customer"], own] if derived else [own]


def journey_context(
    book: JourneyBook, journey_id: str, model: ScoreModel, clock_us: int
) -> JSON | None:
    """The whole context of one journey of `book`, or None when the book does not hold it."""
    journey = book.journey(journey_id)
    if journey is None or not journey.events:
        return None
    as_of = max(clock_us, book.clock)
    events = journey.events
    return {
        **_headline(book, journey, model, as_of),
        "timeline": [_touchpoint(e) for e in events],
        "open_promises": open_promises(events, as_of),
        "unanswered_feedback": unanswered_feedback(events, model, as_of),
        "open_cases": open_cases(events, "c", model, as_of),
        "open_disputes": open_cases(events, "d", model, as_of),
        "signals": [_signal(s) for s in journey.signals()],
        "already_told_us": already_told_us(events),
    }


def journey_summary(book: JourneyBook, journey: JourneyState, model: ScoreModel,
                    clock_us: int) -> JSON:  # fmt: skip
    """One line of a customer's journeys: the headline and how much is open."""
    as_of = max(clock_us, book.clock)
    promises = open_promises(journey.events, as_of)
    return {
        **_headline(book, journey, model, as_of),
        "open_promises": len(promises),
        "next_promise_due_at": promises[0]["due_at"] if promises else None,
        "unanswered_feedback": len(unanswered_feedback(journey.events, model, as_of)),
        "open_cases": len(open_cases(journey.events, "c", model, as_of)),
        "open_disputes": len(open_cases(journey.events, "d", model, as_of)),
    }


def customer_journeys(
    books: Iterable[tuple[JourneyBook, int]], customer_id: str, model: ScoreModel, *,
    open_only: bool,
) -> list[JSON]:  # fmt: skip
    """Summaries of the customer's journeys in `books` (each with its clock), oldest first."""
    found = [
        journey_summary(book, journey, model, clock_us)
        for book, clock_us in books
        if book.customer_id == customer_id
        for journey in book.journeys
        if journey.events
    ]
    if open_only:
        found = [s for s in found if s["status"] == "open"]
    return sorted(found, key=lambda s: (s["started_at"], s["journey_id"]))


def open_promises(events: list[StoredEvent], as_of: int) -> list[JSON]:
    """Promises made and not kept, the soonest due first (those without due date last)."""
    found = []
    for made in _unmet(events, PROMISE, "promise_made", "promise_kept"):
        found.append({
            "promise_id": made.attrs.get("promise_id"),
            "description": made.attrs.get("description"),
            "department": made.department,
            "stage": made.stage,
            "made_at": _time(made.at),
            **_deadline("due_at", made.due, as_of),
        })  # fmt: skip
    return sorted(found, key=lambda p: (p["due_at"] is None, p["due_at"] or "", p["made_at"]))


def unanswered_feedback(events: list[StoredEvent], model: ScoreModel, as_of: int) -> list[JSON]:
    """Feedback received and not answered, with the deadline the model gives an answer."""
    found = []
    for received in _unmet(events, FEEDBACK, "feedback_received", "feedback_answered"):
        found.append({
            "feedback_id": received.attrs.get("feedback_id"),
            "department": received.department,
            "stage": received.stage,
            "received_at": _time(received.at),
            **_deadline("answer_by", received.at + model.feedback_answer_us, as_of),
        })  # fmt: skip
    return sorted(found, key=lambda f: (f["answer_by"], f["feedback_id"] or ""))


def open_cases(events: list[StoredEvent], kind: str, model: ScoreModel, as_of: int) -> list[JSON]:
    """Cases (`kind` "c") or billing disputes ("d") whose latest opening is unresolved."""
    found = []
    for key in _groups(events, kind):
        group = members(events, key)
        openings = [e for e in group if e.type in _OPENS[kind]]
        if not openings or any(
            e.type == _RESOLVES[kind] and e.order > openings[-1].order for e in group
        ):
            continue
        first, latest = openings[0], openings[-1]
        target = model.resolution_target(first.department)
        found.append({
            _ID_OF[kind]: first.attrs.get(_ID_OF[kind]),
            "department": first.department,
            "stage": first.stage,
            "opened_at": _time(first.at),
            "reopened": latest is not first,
            **_deadline("resolve_by", latest.at + target, as_of),
        })  # fmt: skip
    return sorted(found, key=lambda c: (c["resolve_by"], c["opened_at"]))


def already_told_us(events: list[StoredEvent]) -> list[JSON]:
    """What the customer told us when they got in touch: each contact with a reason."""
    return [
        {
            "occurred_at": _time(e.at),
            "department": e.department,
            "channel": e.channel or None,
            "reason": e.attrs["reason"],
            "resolved": e.attrs.get("resolved") is True,
        }
        for e in events
        if e.type == "contact" and e.attrs.get("reason") not in (None, "")
    ]


def _headline(book: JourneyBook, journey: JourneyState, model: ScoreModel, as_of: int) -> JSON:
    score = snapshot(journey, book.customer_id, model, as_of)
    return {
        "journey_id": journey.journey_id,
        "customer_id": book.customer_id,
        "status": score.status,
        "started_at": _time(journey.first.at),
        "last_event_at": _time(journey.last.at),
        "as_of": _time(as_of),
        "score": score.score,
        "band": score.band,
        "operational_score": score.operational_score,
        "survey_score": score.survey_score,
        "score_model": score.score_model,
        "touchpoint_count": score.touchpoint_count,
        "events_not_scored": journey.overflow,
    }


def _touchpoint(event: StoredEvent) -> JSON:
    said = next((event.attrs[n] for n in _SAID if event.attrs.get(n) not in (None, "")), None)
    return {
        "event_id": event.id,
        "occurred_at": _time(event.at),
        "type": event.type,
        "department": event.department,
        "stage": event.stage,
        "channel": event.channel or None,
        "said": said,
        "attributes": dict(event.attrs),
    }


def _signal(signal: Any) -> JSON:
    return {
        "signal": signal.signal,
        "department": signal.department,
        "stage": signal.stage,
        "impact": signal.impact,
        "reason": signal.reason,
        "effective_at": signal.effective_at.isoformat(),
    }


def _unmet(events: list[StoredEvent], kind: str, opened: str, met: str) -> Iterator[StoredEvent]:
    """The `opened` event of each group of `kind` that has one and no `met` event."""
    for key in _groups(events, kind):
        group = members(events, key)
        first = next((e for e in group if e.type == opened), None)
        if first is not None and not any(e.type == met for e in group):
            yield first


def _groups(events: list[StoredEvent], kind: str) -> list[GroupKey]:
    """The rule groups of one obligation kind (PROMISE, FEEDBACK, CASE, DISPUTE), in order
    of their first event."""
    groups: dict[GroupKey, None] = {}
    for event in events:
        for key in group_keys(event):
            group = parse_group(key)
            if group.kind == kind:
                groups[group] = None
    return list(groups)


def _deadline(name: str, at: int | None, as_of: int) -> JSON:
    if at is None:
        return {name: None, "seconds_left": None, "overdue": False}
    return {name: _time(at), "seconds_left": (at - as_of) // 1_000_000, "overdue": as_of > at}


def _time(us: int) -> str:
    return from_us(us).isoformat()
