"""Assembly: what a touchpoint, or the event-time clock moving on, changes in a book.

`add` and `advance` are the only functions that change a `JourneyBook` and the states of
its journeys; each returns the step's `Changes` and both are deterministic in event time.
Which journey an event joins and how a customer's events split into journeys are pure
functions in `segments`; a journey's rule groups are re-evaluated in `state` and its score
is computed in `scoring`.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from pipeline.contract.touchpoint import Touchpoint
from pipeline.journey.book import JourneyBook
from pipeline.journey.events import EPOCH, EVENT_ORDER, StoredEvent, stored_event, to_us
from pipeline.journey.model import ScoreModel
from pipeline.journey.rules import Context
from pipeline.journey.scoring import snapshot
from pipeline.journey.segments import derive_journey_id, joins, moved_touchpoints, resegment
from pipeline.journey.state import (
    Delta,
    JourneyState,
    build_journey,
    due_groups,
    insert,
    reevaluate,
)
from pipeline.journey.types import Assignment, Changes

# A Context is made at every step: NamedTuple's own __new__ is Python code, twice as slow.
_new_tuple = tuple.__new__


def add(
    book: JourneyBook, touchpoint: Touchpoint, model: ScoreModel, occurred_us: int | None = None
) -> Changes:
    """Add one accepted touchpoint; re-score what it touches; fire deadlines it passes.
    `occurred_us`: its `occurred_at` in epoch microseconds, if the caller has it."""
    _check_key(book, touchpoint)
    event_ids = book.event_ids()
    if touchpoint.event_id in event_ids:
        return Changes(duplicate=True)
    event = stored_event(touchpoint, model, occurred_us)
    if book.retired_until is not None and event.at <= book.retired_until:
        book.too_late += 1
        return Changes(too_late=True)
    if event.at > book.clock:
        book.clock = event.at
    changes = Changes()
    deltas: dict[str, Delta] = {}
    if book.score_model != model.version:
        _adopt(book, model, changes, deltas)
    journey, placed = _place(book, event, model, changes, deltas)
    journey_id = journey.journey_id
    if not placed:
        ctx = _new_tuple(Context, (journey_id, book.customer_id, model, book.clock, None))
        _merge(deltas, journey_id, insert(journey, event, ctx, model.max_events_per_journey))
    event_ids.add(event.id)
    changes.assignment = Assignment(event.id, journey_id, event.stage)
    _fire_deadlines(book, model, deltas)
    _report(book, model, changes, deltas)
    _retire(book, model)  # after reporting: a journey's last changes must still go out
    return changes


def advance(book: JourneyBook, now: datetime, model: ScoreModel) -> Changes:
    """Move the book's event-time clock to `now` (never backwards) and fire due deadlines.

    A deadline fires when the clock is strictly past it, once: its signal then belongs to
    the journey's state and later advances find nothing left to fire.
    """
    book.clock = max(book.clock, to_us(now))
    changes = Changes()
    deltas: dict[str, Delta] = {}
    _adopt(book, model, changes, deltas)
    _fire_deadlines(book, model, deltas)
    _report(book, model, changes, deltas)
    _retire(book, model)  # after reporting: a journey's last changes must still go out
    return changes


def _check_key(book: JourneyBook, touchpoint: Touchpoint) -> None:
    if touchpoint.key != book.key or (touchpoint.journey_id is not None) != book.by_journey_id:
        raise ValueError(
            f"touchpoint {touchpoint.event_id!r} has key {touchpoint.key!r}: expected "
            f"{book.key!r} ({'journey_id' if book.by_journey_id else 'customer_id'} key)"
        )


def _adopt(
    book: JourneyBook, model: ScoreModel, changes: Changes, deltas: dict[str, Delta]
) -> None:
    # A worker restarted with another model version must not mix versions in a journey:
    # the book's journeys are re-assembled and re-scored with the new model first.
    if book.score_model != model.version:
        if book.journeys:
            _rebuild(book, None, model, changes, deltas, reuse=False)
        book.score_model = model.version


def _place(
    book: JourneyBook,
    event: StoredEvent,
    model: ScoreModel,
    changes: Changes,
    deltas: dict[str, Delta],
) -> tuple[JourneyState, bool]:
    """The journey `event` belongs to, and whether it is already in it (after re-segmenting)."""
    journeys = book.journeys
    if book.by_journey_id:
        if not journeys:
            journeys.append(JourneyState(journey_id=book.key))
        return journeys[0], False
    at = joins(journeys, event, model.inactivity_gap_us)
    if at is None:  # it moves a journey boundary
        _rebuild(book, event, model, changes, deltas, reuse=True)
        return next(j for j in book.journeys if any(e.id == event.id for e in j.events)), True
    if at == len(journeys):
        journeys.append(JourneyState(journey_id=derive_journey_id(book.customer_id, event)))
    return journeys[at], False


def _rebuild(
    book: JourneyBook,
    extra: StoredEvent | None,
    model: ScoreModel,
    changes: Changes,
    deltas: dict[str, Delta],
    *,
    reuse: bool,
) -> None:
    """Re-assemble the book's journeys from its events (plus `extra`) and re-score them.

    With `reuse`, a journey whose events did not change is kept as it is; without it (a
    new model version), every journey is re-scored. What changed goes into `changes`.
    """
    old = {j.journey_id: j for j in book.journeys}
    ordered = sorted(
        [*(e for j in book.journeys for e in j.events), *([extra] if extra else [])],
        key=EVENT_ORDER,
    )
    if book.by_journey_id:
        parts = [(book.key, ordered)] if ordered else []
    else:
        parts = resegment(book.customer_id, ordered, model.inactivity_gap_us)
    changes.moved.extend(moved_touchpoints(book.journeys, parts))
    fresh = [
        _journey_for(book, journey_id, events, old.get(journey_id), model, deltas, reuse)
        for journey_id, events in parts
    ]
    for journey_id, journey in old.items():
        if all(j.journey_id != journey_id for j in fresh):
            changes.retired.append(journey_id)
            changes.retracted.extend(journey.signals())
    book.journeys = fresh


def _journey_for(
    book: JourneyBook,
    journey_id: str,
    events: list[StoredEvent],
    previous: JourneyState | None,
    model: ScoreModel,
    deltas: dict[str, Delta],
    reuse: bool,
) -> JourneyState:
    if reuse and previous is not None and [e.id for e in previous.events] == [e.id for e in events]:
        return previous
    ctx = _new_tuple(Context, (journey_id, book.customer_id, model, book.clock, None))
    journey = build_journey(journey_id, events, ctx, model.max_events_per_journey)
    before = previous.signals() if previous is not None else []
    now = journey.signals()
    now_ids = {s.signal_id for s in now}
    delta = deltas.setdefault(journey_id, Delta())
    delta.retracted.extend(s for s in before if s.signal_id not in now_ids)
    delta.appeared.extend(s for s in now if s not in before)
    if previous is not None:
        journey.reported = previous.reported
        journey.overflow += previous.overflow
    return journey


def _merge(deltas: dict[str, Delta], journey_id: str, delta: Delta) -> None:
    """Add a step's `delta` (its own: not held elsewhere) to the journey's."""
    into = deltas.get(journey_id)
    if into is None:
        deltas[journey_id] = delta
        return
    into.appeared.extend(delta.appeared)
    into.retracted.extend(delta.retracted)


def _fire_deadlines(book: JourneyBook, model: ScoreModel, deltas: dict[str, Delta]) -> None:
    clock = book.clock
    for journey in book.journeys:
        due = due_groups(journey, clock) if journey.deadlines else None
        if due:
            journey_id = journey.journey_id
            ctx = _new_tuple(Context, (journey_id, book.customer_id, model, clock, None))
            _merge(deltas, journey_id, reevaluate(journey, due, ctx))
        elif _goes_quiet(journey, clock, model) and journey.journey_id not in deltas:
            deltas[journey.journey_id] = Delta()  # only its status changes


def _goes_quiet(journey: JourneyState, clock: int, model: ScoreModel) -> bool:
    """The journey was reported open and the inactivity gap has now passed."""
    reported = journey.reported
    return (
        reported is not None
        and reported.status == "open"
        and clock > journey.last.at + model.inactivity_gap_us
    )


def _retire(book: JourneyBook, model: ScoreModel) -> None:
    # Only from the front, so "too late" is one watermark: everything at or before it.
    while not book.by_journey_id and len(book.journeys) > 1:
        first = book.journeys[0]
        if first.deadlines or book.clock <= first.last.at + model.retention_us:
            return
        ended = first.last.type == "journey_closed"
        book.retired_until = first.last.at + (0 if ended else model.inactivity_gap_us)
        book.journeys.pop(0)
        book.event_ids().difference_update(e.id for e in first.events)


def _report(
    book: JourneyBook, model: ScoreModel, changes: Changes, deltas: dict[str, Delta]
) -> None:
    for journey in book.journeys:
        delta = deltas.get(journey.journey_id)
        if delta is None:
            continue
        unchanged = not delta.appeared and not delta.retracted
        score = snapshot(journey, book.customer_id, model, book.clock, unchanged)
        bare = msgspec.structs.replace(score, signals=[], updated_at=EPOCH)
        previous = journey.reported
        if unchanged and bare == previous:
            continue
        changes.scores.append(score)
        changes.appeared.extend(delta.appeared)
        changes.retracted.extend(delta.retracted)
        if score.band == "poor" and (previous is None or previous.band != "poor"):
            changes.turned_poor.append(score)
        journey.reported = bare
