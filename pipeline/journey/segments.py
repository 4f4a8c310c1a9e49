"""Journey assembly for a customer's touchpoints that carry no journey_id.

A customer's events, ordered by (occurred_at, event_id), form one journey until an
inactivity gap (event time between two consecutive events strictly longer than the
model's gap) or a `journey_closed` event (which ends its journey). A journey's id is
`<customer_id>@<first event time, UTC, to the second>Z#<8 hex of the first event's id>`:
a function of the event set only, so replays and arrival orders agree. A late event that
lands before a journey's first event, bridges two journeys, or splits one changes the
segmentation; the book is then re-segmented from its events and `Changes` lists the ids
that ceased to exist (`retired`) and the touchpoints that moved (`reassigned`).
"""

from __future__ import annotations

import bisect
import hashlib
from typing import TYPE_CHECKING

from pipeline.journey.events import EVENT_ORDER, StoredEvent, from_us
from pipeline.journey.journey import Delta, JourneyState, build_journey
from pipeline.journey.model import ScoreModel
from pipeline.journey.rules import Context
from pipeline.journey.types import Assignment, Changes

if TYPE_CHECKING:
    from pipeline.journey.book import JourneyBook


def derive_journey_id(customer_id: str, first: StoredEvent) -> str:
    """The id of a customer journey without journey_id, from its first event."""
    digest = hashlib.blake2b(first.id.encode(), digest_size=4).hexdigest()
    return f"{customer_id}@{from_us(first.at):%Y-%m-%dT%H:%M:%S}Z#{digest}"


def boundary(before: StoredEvent, after: StoredEvent, gap: int) -> bool:
    """Whether `after` starts a new journey following `before` (its predecessor)."""
    return before.type == "journey_closed" or after.at - before.at > gap


def segments(events: list[StoredEvent], gap: int) -> list[list[StoredEvent]]:
    """Split a customer's ordered events into journeys."""
    found: list[list[StoredEvent]] = []
    for event in events:
        if found and not boundary(found[-1][-1], event, gap):
            found[-1].append(event)
        else:
            found.append([event])
    return found


def place(
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
    gap = model.inactivity_gap_us
    at = bisect.bisect_right(journeys, event.order, key=lambda j: j.first.order) - 1
    if at >= 0 and _fits(journeys, at, event, gap):
        return journeys[at], False
    if not journeys or (
        event.order > journeys[-1].last.order and boundary(journeys[-1].last, event, gap)
    ):
        journeys.append(JourneyState(journey_id=derive_journey_id(book.customer_id, event)))
        return journeys[-1], False
    return _resegment(book, event, model, changes, deltas), True


def _fits(journeys: list[JourneyState], at: int, event: StoredEvent, gap: int) -> bool:
    """The event joins journey `at` without moving any journey boundary."""
    events = journeys[at].events
    index = bisect.bisect_left(events, event.order, key=EVENT_ORDER)
    if boundary(events[index - 1], event, gap):
        return False
    if index < len(events):
        return not boundary(event, events[index], gap)
    following = journeys[at + 1] if at + 1 < len(journeys) else None
    return following is None or boundary(event, following.first, gap)


def _resegment(
    book: JourneyBook,
    event: StoredEvent,
    model: ScoreModel,
    changes: Changes,
    deltas: dict[str, Delta],
) -> JourneyState:
    rebuild(book, event, model, changes, deltas, reuse=True)
    return next(j for j in book.journeys if any(e.id == event.id for e in j.events))


def rebuild(
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
    was_in = {e.id: j.journey_id for j in book.journeys for e in j.events}
    ordered = sorted(
        [*(e for j in book.journeys for e in j.events), *([extra] if extra else [])],
        key=EVENT_ORDER,
    )
    if book.by_journey_id:
        parts = [ordered] if ordered else []
    else:
        parts = segments(ordered, model.inactivity_gap_us)
    fresh: list[JourneyState] = []
    for segment in parts:
        journey_id = (
            book.key if book.by_journey_id else derive_journey_id(book.customer_id, segment[0])
        )
        journey = _journey_for(book, journey_id, segment, old.get(journey_id), model, deltas, reuse)
        fresh.append(journey)
        changes.reassigned.extend(
            Assignment(event_id=e.id, journey_id=journey_id, stage=e.stage)
            for e in segment
            if e.id in was_in and was_in[e.id] != journey_id
        )
    for journey_id, journey in old.items():
        if all(j.journey_id != journey_id for j in fresh):
            changes.retired.append(journey_id)
            changes.retracted.extend(journey.signals())
    book.journeys = fresh


def _journey_for(
    book: JourneyBook,
    journey_id: str,
    segment: list[StoredEvent],
    previous: JourneyState | None,
    model: ScoreModel,
    deltas: dict[str, Delta],
    reuse: bool,
) -> JourneyState:
    if (
        reuse
        and previous is not None
        and [e.id for e in previous.events] == [e.id for e in segment]
    ):
        return previous
    ctx = Context(journey_id, book.customer_id, model, book.clock)
    journey = build_journey(journey_id, segment, ctx, model.max_events_per_journey)
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
