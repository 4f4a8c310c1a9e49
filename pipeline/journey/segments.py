"""How a customer's touchpoints without journey_id split into journeys: values in, values out.

A customer's events, ordered by (occurred_at, event_id), form one journey until an
inactivity gap (event time between two consecutive events strictly longer than the
model's gap) or a `journey_closed` event (which ends its journey). A journey's id is
`<customer_id>@<first event time, UTC, to the second>Z#<8 hex of the first event's id>`:
a function of the event set only, so replays and arrival orders agree. A late event that
lands before a journey's first event, bridges two journeys, or splits one moves a boundary
(`joins` finds none for it): the customer's events are then split again (`resegment`),
some journey ids cease to exist (`Changes.retired`) and stored touchpoints move to another
journey (`moved_touchpoints`: `Changes.moved`). The book changes in `assembly`.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

from pipeline.journey.events import EVENT_ORDER, StoredEvent, from_us
from pipeline.journey.state import JourneyState
from pipeline.journey.types import Assignment


def derive_journey_id(customer_id: str, first: StoredEvent) -> str:
    """The id of a customer journey without journey_id, from its first event."""
    digest = hashlib.blake2b(first.id.encode(), digest_size=4).hexdigest()
    return f"{customer_id}@{from_us(first.at):%Y-%m-%dT%H:%M:%S}Z#{digest}"


def boundary(before: StoredEvent, after: StoredEvent, gap: int) -> bool:
    """Whether `after` starts a new journey following `before` (its predecessor)."""
    return before.type == "journey_closed" or after.at - before.at > gap


def segments(events: Sequence[StoredEvent], gap: int) -> list[list[StoredEvent]]:
    """Split a customer's ordered events into journeys."""
    found: list[list[StoredEvent]] = []
    for event in events:
        if found and not boundary(found[-1][-1], event, gap):
            found[-1].append(event)
        else:
            found.append([event])
    return found


def resegment(
    customer_id: str, events: Sequence[StoredEvent], gap: int
) -> list[tuple[str, list[StoredEvent]]]:
    """A customer's journeys from all their ordered events: (journey id, its events) each."""
    return [(derive_journey_id(customer_id, part[0]), part) for part in segments(events, gap)]


def joins(journeys: Sequence[JourneyState], event: StoredEvent, gap: int) -> int | None:
    """Where a new `event` goes among a customer's journeys (in order) if it moves no
    journey boundary: the index of the journey it joins, or `len(journeys)` when it starts
    a new journey after the last. None when it moves a boundary (see `resegment`)."""
    if journeys:  # most events come after all of the customer's others: no search then
        last = journeys[-1].events[-1]
        if EVENT_ORDER(event) > EVENT_ORDER(last):
            return len(journeys) if boundary(last, event, gap) else len(journeys) - 1
    at = bisect.bisect_right(journeys, event.order, key=lambda j: j.first.order) - 1
    if at >= 0 and _fits(journeys, at, event, gap):
        return at
    if not journeys or (
        event.order > journeys[-1].last.order and boundary(journeys[-1].last, event, gap)
    ):
        return len(journeys)
    return None


def _fits(journeys: Sequence[JourneyState], at: int, event: StoredEvent, gap: int) -> bool:
    """The event joins journey `at` without moving any journey boundary."""
    events = journeys[at].events
    index = bisect.bisect_left(events, event.order, key=EVENT_ORDER)
    if boundary(events[index - 1], event, gap):
        return False
    if index < len(events):
        return not boundary(event, events[index], gap)
    following = journeys[at + 1] if at + 1 < len(journeys) else None
    return following is None or boundary(event, following.first, gap)


def moved_touchpoints(
    before: Sequence[JourneyState], after: Sequence[tuple[str, Sequence[StoredEvent]]]
) -> list[Assignment]:
    """The events of `before` that are in another journey in `after`, with their new
    journey: `Changes.moved`, which the stream applies to the touchpoints rows it stored
    (`pipeline.stream.sink.move_touchpoints`)."""
    was_in = {e.id: j.journey_id for j in before for e in j.events}
    return [
        Assignment(event_id=e.id, journey_id=journey_id, stage=e.stage)
        for journey_id, events in after
        for e in events
        if e.id in was_in and was_in[e.id] != journey_id
    ]
