"""The state of one routing key, and the operations the stream applies to it.

The stream keys its table by the touchpoint's journey (docs/concepts.md): `journey_id` when
the event has one, else `customer_id`, told apart by `book_key` even where the two ids are
the same string. So a `JourneyBook` holds either exactly one journey
(keyed by journey id) or a customer's journeys without journey id, segmented by the
inactivity gap and by `journey_closed` (see `segments`). `add` and `advance` mutate the
book and return `Changes`; both are deterministic in event time.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from pipeline.contract.touchpoint import Touchpoint
from pipeline.journey.events import EPOCH, NEVER, StoredEvent, from_us, stored_event, to_us
from pipeline.journey.journey import (
    Delta,
    JourneyState,
    due_groups,
    insert,
    members,
    reevaluate,
    snapshot,
)
from pipeline.journey.model import ScoreModel
from pipeline.journey.rules import Context
from pipeline.journey.segments import place, rebuild
from pipeline.journey.types import Assignment, Changes, JourneyScore, PromiseDue

# A journey id and a customer id are different things that may be the same string (order
# "10442" of customer "10442"): their books share a Kafka key, so a partition, but never a
# book key. A journey-keyed book keeps its journey id as key (what state tables held
# before); a customer's book is prefixed, and a journey id that starts with NUL is
# escaped, so no id can pose as another kind's key. Other keys starting with NUL are free
# for whoever stores books (the worker keeps its partition clocks at "\x00clock:<n>").
CUSTOMER_BOOK_PREFIX = "\x00customer:"
ESCAPED_JOURNEY_PREFIX = "\x00journey:"


class JourneyBook(msgspec.Struct, kw_only=True, dict=True):
    """The journeys of one routing key. Create with `JourneyBook.for_touchpoint(tp)`.

    `clock` is the book's event time in epoch microseconds: the latest of its events'
    times and of every `advance(now)`. `retired_until` is set once old customer journeys
    have been retired: events at or before it are too late and are only counted.
    """

    key: str
    customer_id: str
    by_journey_id: bool
    clock: int = NEVER
    journeys: list[JourneyState] = msgspec.field(default_factory=list)
    retired_until: int | None = None
    too_late: int = 0
    score_model: str = ""  # the model version the journeys were last scored with

    @classmethod
    def for_touchpoint(cls, touchpoint: Touchpoint) -> JourneyBook:
        """An empty book for the routing key of `touchpoint`."""
        return cls(
            key=touchpoint.key,
            customer_id=touchpoint.customer_id,
            by_journey_id=touchpoint.journey_id is not None,
        )

    @property
    def book_key(self) -> str:
        """The key this book is stored under: `book_key(tp)` of its touchpoints."""
        if not self.by_journey_id:
            return CUSTOMER_BOOK_PREFIX + self.key
        return self.key if self.key[:1] != "\x00" else ESCAPED_JOURNEY_PREFIX + self.key

    def to_bytes(self) -> bytes:
        """Compact msgpack for a RocksDB-backed table."""
        return _ENCODER.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> JourneyBook:
        return _DECODER.decode(data)

    def event_ids(self) -> set[str]:
        """Ids of the events kept in the book (cached; not serialised)."""
        ids: set[str] | None = getattr(self, "_ids", None)
        if ids is None:
            ids = {e.id for journey in self.journeys for e in journey.events}
            self._ids = ids
        return ids

    def journey(self, journey_id: str) -> JourneyState | None:
        return next((j for j in self.journeys if j.journey_id == journey_id), None)

    def scores(self, model: ScoreModel) -> list[JourneyScore]:
        """The current snapshot of every journey in the book."""
        return [snapshot(j, self.customer_id, model, self.clock) for j in self.journeys]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(JourneyBook)


def book_key(touchpoint: Touchpoint) -> str:
    """The key of the book `touchpoint` belongs to (see CUSTOMER_BOOK_PREFIX)."""
    journey_id = touchpoint.journey_id
    if journey_id is None:
        return CUSTOMER_BOOK_PREFIX + touchpoint.customer_id
    return journey_id if journey_id[:1] != "\x00" else ESCAPED_JOURNEY_PREFIX + journey_id


def routing_key(key: str) -> str:
    """The Kafka key (`Touchpoint.key`, which places it on a partition) of a book key."""
    for prefix in (CUSTOMER_BOOK_PREFIX, ESCAPED_JOURNEY_PREFIX):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def add(book: JourneyBook, touchpoint: Touchpoint, model: ScoreModel) -> Changes:
    """Add one accepted touchpoint; re-score what it touches; fire deadlines it passes."""
    _check_key(book, touchpoint)
    if touchpoint.event_id in book.event_ids():
        return Changes(duplicate=True)
    event = stored_event(touchpoint, model)
    if book.retired_until is not None and event.at <= book.retired_until:
        book.too_late += 1
        return Changes(too_late=True)
    book.clock = max(book.clock, event.at)
    changes = Changes()
    deltas: dict[str, Delta] = {}
    _adopt(book, model, changes, deltas)
    journey, placed = place(book, event, model, changes, deltas)
    ctx = Context(journey.journey_id, book.customer_id, model, book.clock)
    if not placed:
        _merge(
            deltas, journey.journey_id, insert(journey, event, ctx, model.max_events_per_journey)
        )
    book.event_ids().add(event.id)
    changes.assignment = Assignment(
        event_id=event.id, journey_id=journey.journey_id, stage=event.stage
    )
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


def next_deadline(book: JourneyBook, model: ScoreModel) -> datetime | None:
    """The earliest event time at which `advance` would change something, if any.

    Advancing to any time strictly after it fires a deadline signal, closes an inactive
    journey or retires a dormant one.
    """
    moments = [d for j in book.journeys for d in j.deadlines.values()]
    for journey in book.journeys:
        if journey.last.type != "journey_closed":
            moments.append(journey.last.at + model.inactivity_gap_us)
    if not book.by_journey_id and len(book.journeys) > 1 and not book.journeys[0].deadlines:
        moments.append(book.journeys[0].last.at + model.retention_us)  # retiring it
    pending = [m for m in moments if m >= book.clock]
    return from_us(min(pending)) if pending else None


def promises_due(book: JourneyBook, now: datetime, horizon_seconds: float) -> list[PromiseDue]:
    """Open promises (neither kept nor broken) due within `horizon_seconds` after `now`."""
    start = to_us(now)
    end = start + round(horizon_seconds * 1_000_000)
    due: list[PromiseDue] = []
    for journey in book.journeys:
        for key, deadline in journey.deadlines.items():
            if key[0] == "p" and start <= deadline <= end:
                made = next(e for e in members(journey.events, key) if e.type == "promise_made")
                due.append(_promise_due(book, journey, made))
    due.sort(key=lambda d: (d.due_at, d.journey_id, d.promise_id))
    return due


def _promise_due(book: JourneyBook, journey: JourneyState, made: StoredEvent) -> PromiseDue:
    attrs = made.attrs
    return PromiseDue(
        journey_id=journey.journey_id,
        customer_id=book.customer_id,
        promise_id=str(attrs.get("promise_id", "")),
        description=str(attrs.get("description") or attrs.get("promise_id") or "promise"),
        department=made.department,
        stage=made.stage,
        due_at=from_us(made.due or 0),
        event_id=made.id,
        made_at=from_us(made.at),
    )


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
            rebuild(book, None, model, changes, deltas, reuse=False)
        book.score_model = model.version


def _merge(deltas: dict[str, Delta], journey_id: str, delta: Delta) -> None:
    into = deltas.setdefault(journey_id, Delta())
    into.appeared.extend(delta.appeared)
    into.retracted.extend(delta.retracted)


def _fire_deadlines(book: JourneyBook, model: ScoreModel, deltas: dict[str, Delta]) -> None:
    for journey in book.journeys:
        due = due_groups(journey, book.clock)
        if due:
            ctx = Context(journey.journey_id, book.customer_id, model, book.clock)
            _merge(deltas, journey.journey_id, reevaluate(journey, due, ctx))
        elif _goes_quiet(journey, book.clock, model):
            deltas.setdefault(journey.journey_id, Delta())  # only its status changes


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
