"""One book's stored touchpoints scored again, as the live worker scored them.

A book is what the worker keeps per routing key (`pipeline.journey.book`): one journey
given its id by the sender, or one customer's journeys without an id. The engine's result
is a function of a journey's events, the model and the event-time clock, and the worker
fires each deadline by stepping its clock just past it (`JourneyProcessor._catch_up`), so
a journey's last snapshot, its `updated_at` and its row version depend on its events and
deadlines alone; scoring all of a journey's events at once and then stepping past its
deadlines gives the worker's last rows. What the engine reports is kept as the worker
keeps it (the last state of each journey and signal, built by `pipeline.stream.rows`).

One difference, by construction: a signal row's `version` is the version of the journey
snapshot that last changed it. The worker saw the signal appear at an earlier event; the
rescore scores the journey once, so its signals carry that snapshot's version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec
import orjson

from pipeline.contract import Touchpoint
from pipeline.journey import (
    Changes,
    JourneyBook,
    ScoreModel,
    advance,
    derive_journey_id,
    next_deadline,
)
from pipeline.journey.events import (
    EPOCH,
    EVENT_ORDER,
    KEPT_ATTRIBUTES,
    StoredEvent,
    from_us,
    parse_due,
    stored_event,
    to_us,
)
from pipeline.journey.rules import Context
from pipeline.journey.scoring import snapshot
from pipeline.journey.segments import segments
from pipeline.journey.state import build_journey
from pipeline.stream.rows import Latest, Position, Row

# The id the engine derives for a customer's journey without journey_id
# (`segments.derive_journey_id`): `<customer>@<first event, to the second>Z#<8 hex>`. A
# stored touchpoint whose journey_id has this form for its customer came without one, and
# belongs to the customer's book; any other came with its journey_id.
_DERIVED = re.compile(r"@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ#[0-9a-f]{8}")

# The columns `stored_row` reads, in this order (occurred_at in epoch microseconds).
COLUMNS = (
    "event_id", "toUnixTimestamp64Micro(occurred_at) AS at_us", "customer_id", "journey_id",
    "department", "stage", "channel", "type", "attributes", "schema_version",
)  # fmt: skip


class Book(NamedTuple):
    """Which book a touchpoint belongs to: what `JourneyBook.for_touchpoint` reads of it."""

    key: str  # the routing key: the journey_id it came with, else its customer_id
    customer_id: str
    by_journey_id: bool


class BookRows(NamedTuple):
    journeys: list[Row]
    signals: list[Row]
    events: int  # touchpoints scored (duplicates included)


def came_without_journey_id(customer_id: str, journey_id: str) -> bool:
    """Whether a stored touchpoint's journey id is one the engine derived for its customer."""
    return (
        journey_id.startswith(customer_id)
        and _DERIVED.fullmatch(journey_id, len(customer_id)) is not None
    )


def book_of(touchpoint: Touchpoint) -> Book:
    journey_id = touchpoint.journey_id
    if journey_id is None:
        return Book(touchpoint.customer_id, touchpoint.customer_id, False)
    return Book(journey_id, touchpoint.customer_id, True)


def stored_row(row: list[Any], model: ScoreModel) -> tuple[Book, StoredEvent]:
    """A `touchpoints` row (the `COLUMNS`) as its book and the event journey state keeps:
    what `stored_event` makes of the touchpoint it was stored from, without building the
    touchpoint (a fifth of the scoring processes' time). The stage is the one stored: the
    event's own, or the live model's default for its type when it had none (the
    touchpoints table does not say which)."""
    event_id, at_us, customer_id, journey_id, department, stage, channel, kind, attrs, _ = row
    sent = not came_without_journey_id(customer_id, journey_id)
    values = orjson.loads(attrs) if attrs else {}
    event = StoredEvent(
        id=event_id,
        at=int(at_us),
        type=kind,
        department=department,
        stage=stage or model.stages.get(kind, model.stages["default"]),
        channel=channel,
        attrs=values
        if values.keys() <= KEPT_ATTRIBUTES
        else {k: v for k, v in values.items() if k in KEPT_ATTRIBUTES},
        due=parse_due(values.get("due_at")) if kind == "promise_made" else None,
    )
    return Book(journey_id if sent else customer_id, customer_id, sent), event


def score_book(
    touchpoints: Iterable[Touchpoint], model: ScoreModel, as_of_us: int, at: Position
) -> BookRows:
    """`score_events` for the touchpoints of one routing key."""
    touchpoints = list(touchpoints)
    events = [stored_event(touchpoint, model) for touchpoint in touchpoints]
    return score_events(book_of(touchpoints[0]), events, model, as_of_us, at)


def score_events(
    book: Book, events: Iterable[StoredEvent], model: ScoreModel, as_of_us: int, at: Position
) -> BookRows:
    """The rows of one book's journeys and signals, scored from its events with `model`,
    the event-time clock moved on to `as_of_us` at the end.

    Each journey is assembled from all its events and scored once (`build_journey`, which
    the engine's tests hold equal to adding the events one by one), as of its last event:
    where the worker's last snapshot before any deadline was taken. Then its deadlines fire
    one at a time, as the worker's catch-up fires them. The journeys of a customer's book
    are apart in event time (split by the inactivity gap), so each is scored on its own.
    """
    seen: dict[str, StoredEvent] = {}
    count = 0
    for event in events:  # a re-sent event, or one moved between journeys, counts once
        seen.setdefault(event.id, event)
        count += 1
    ordered = sorted(seen.values(), key=EVENT_ORDER)
    parts = [ordered] if book.by_journey_id else segments(ordered, model.inactivity_gap_us)
    latest = Latest()
    for part in parts:
        state = JourneyBook(key=book.key, customer_id=book.customer_id,
                            by_journey_id=book.by_journey_id)  # fmt: skip
        state.clock, state.score_model = part[-1].at, model.version
        journey_id = (
            state.key if book.by_journey_id else derive_journey_id(book.customer_id, part[0])
        )
        ctx = Context(journey_id, book.customer_id, model, state.clock)
        journey = build_journey(journey_id, part, ctx, model.max_events_per_journey)
        state.journeys.append(journey)
        score = snapshot(journey, book.customer_id, model, state.clock)
        journey.reported = msgspec.structs.replace(score, signals=[], updated_at=EPOCH)
        latest.keep(Changes(scores=[score], appeared=score.signals), book.customer_id,
                    state.clock, model.version, at)  # fmt: skip
        _catch_up(state, as_of_us, model, latest, at)
    built = latest.build(stream=False)  # no score messages, no checkpoint
    return BookRows(built.journey_rows, built.signal_rows, count)


def _catch_up(
    book: JourneyBook, clock_us: int, model: ScoreModel, latest: Latest, at: Position
) -> None:
    """Step past each deadline before `clock_us`, as the worker's catch-up does."""
    while (deadline := next_deadline(book, model)) is not None:
        deadline_us = to_us(deadline)
        if deadline_us >= clock_us:
            return
        changes = advance(book, from_us(deadline_us + 1), model)
        latest.keep(changes, book.customer_id, book.clock, model.version, at)
