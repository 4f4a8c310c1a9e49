"""The state of one routing key, its keys, and what can be read from it.

The stream keys its table by the touchpoint's journey (docs/concepts.md): `journey_id` when
the event has one, else `customer_id`, told apart by `book_key` even where the two ids are
the same string. So a `JourneyBook` holds either exactly one journey
(keyed by journey id) or a customer's journeys without journey id, segmented by the
inactivity gap and by `journey_closed` (see `segments`). `assembly.add` and
`assembly.advance` change a book; here are its stored form and the questions the stream
asks of it (`next_deadline`, `promises_due`).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from pipeline.contract.touchpoint import Touchpoint
from pipeline.journey.events import NEVER, StoredEvent, from_us, to_us
from pipeline.journey.model import ScoreModel
from pipeline.journey.rules import PROMISE, members, parse_group
from pipeline.journey.scoring import snapshot
from pipeline.journey.state import JourneyState
from pipeline.journey.types import JourneyScore, PromiseDue

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


def next_deadline(book: JourneyBook, model: ScoreModel) -> datetime | None:
    """The earliest event time at which `advance` would change something, if any.

    Advancing to any time strictly after it fires a deadline signal, closes an inactive
    journey or retires a dormant one.
    """
    due = next_deadline_us(book, model)
    return None if due is None else from_us(due)


def next_deadline_us(book: JourneyBook, model: ScoreModel) -> int | None:
    """`next_deadline` in epoch microseconds (what the stream compares with its clocks)."""
    clock = book.clock
    gap = model.inactivity_gap_us
    journeys = book.journeys
    earliest: int | None = None
    for journey in journeys:
        for moment in journey.deadlines.values():
            if moment >= clock and (earliest is None or moment < earliest):
                earliest = moment
        last = journey.events[-1]
        if last.type != "journey_closed":
            moment = last.at + gap
            if moment >= clock and (earliest is None or moment < earliest):
                earliest = moment
    if not book.by_journey_id and len(journeys) > 1 and not journeys[0].deadlines:
        moment = journeys[0].events[-1].at + model.retention_us  # retiring it
        if moment >= clock and (earliest is None or moment < earliest):
            earliest = moment
    return earliest


def promises_due(book: JourneyBook, now: datetime, horizon_seconds: float) -> list[PromiseDue]:
    """Open promises (neither kept nor broken) due within `horizon_seconds` after `now`."""
    start = to_us(now)
    end = start + round(horizon_seconds * 1_000_000)
    due: list[PromiseDue] = []
    for journey in book.journeys:
        for key, deadline in journey.deadlines.items():
            if start <= deadline <= end and (group := parse_group(key)).kind == PROMISE:
                made = next(e for e in members(journey.events, group) if e.type == "promise_made")
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
