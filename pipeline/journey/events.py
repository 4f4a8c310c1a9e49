"""The compact form of a touchpoint kept in journey state, and the engine's time unit.

A book lives in a RocksDB-backed table and is decoded and re-encoded for every event, so an
event is kept as a positional (array-like) struct with integer microsecond timestamps and
only the attributes the score model reads. Unknown attributes stay in the touchpoints table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import Any

import msgspec

from pipeline.contract.touchpoint import Touchpoint
from pipeline.journey.model import ScoreModel

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEVER = -(2**62)  # an event-time clock that has not started: before every real moment
_ONE_US = timedelta(microseconds=1)
_FAST_UNTIL = 4_102_444_800_000_000  # 2100-01-01

# The attributes signals and reasons read; everything else is left out of journey state.
KEPT_ATTRIBUTES = frozenset(
    {
        "resolved", "wait_seconds", "to_department", "context_transferred", "promise_id",
        "description", "feedback_id", "case_id", "dispute_id", "csat", "nps", "ces",
        "reason", "about", "invoice_id", "order_id", "appointment_id", "outcome",
    }
)  # fmt: skip


class StoredEvent(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One touchpoint as journey state keeps it. `at` and `due` are epoch microseconds.

    `due` is the parsed `due_at` of a `promise_made` (None when absent or unreadable).
    Events order by `(at, id)`: a total order that does not depend on arrival.
    """

    id: str
    at: int
    type: str
    department: str
    stage: str
    channel: str
    attrs: dict[str, Any]
    due: int | None = None

    @property
    def order(self) -> tuple[int, str]:
        return (self.at, self.id)


EVENT_ORDER = attrgetter("at", "id")  # the same as StoredEvent.order, at C speed


# The one conversion between datetimes and the engine's microseconds, for the engine and the
# stream alike. It must be exact both ways in every year: the worker's catch-up loop steps
# a journey to `from_us(deadline + 1)` and relies on the engine reading that back as past
# the deadline. Float seconds (`timestamp() * 1e6`) drop a microsecond for some real dates
# (about one in a hundred around 1971, more before 1950 and after 2100) and at the
# calendar's edges (year 0001): the step then lands on the deadline itself, nothing fires,
# and the loop spins for ever with the event loop pinned (tests/unit/test_stream_clock.py).
def to_us(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime (naive ones are refused by the contract)."""
    if moment.tzinfo is None:
        raise ValueError(f"event time {moment!r}: expected a timezone-aware datetime")
    return (moment - EPOCH) // _ONE_US


# Cached: a journey's first and last event, its clock and its deadlines come back at every
# re-score (five conversions an event, four of them repeats: about 6% of the worker's main
# thread with the formatting below); datetimes are immutable, so a shared one will do.
@lru_cache(maxsize=1 << 16)
def from_us(us: int) -> datetime:
    """The UTC datetime of epoch microseconds."""
    # Twice as fast as EPOCH + timedelta(...) and exact to the microsecond for years
    # 1970-2100 (float rounding is half-even on a value with < 2**53 microseconds).
    if 0 <= us < _FAST_UNTIL:
        return datetime.fromtimestamp(us / 1_000_000, UTC)
    return EPOCH + timedelta(microseconds=us)


@lru_cache(maxsize=1 << 14)
def text_time(us: int) -> str:
    """A time as departments read it in reasons: `2026-03-02 10:00 UTC`."""
    return from_us(us).strftime("%Y-%m-%d %H:%M UTC")


def parse_due(value: Any) -> int | None:
    """A promise's `due_at` as epoch microseconds; None when it is not an aware RFC 3339 time.

    The validator rejects such promises; the engine still must not crash on one, so an
    unreadable due date makes a promise that can only be kept, never broken.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return to_us(moment) if moment.tzinfo is not None else None


def stored_event(
    touchpoint: Touchpoint, model: ScoreModel, occurred_us: int | None = None
) -> StoredEvent:
    """Compact a touchpoint for journey state, resolving its stage with the model.
    `occurred_us`: its `occurred_at` in epoch microseconds, if the caller has it."""
    attributes = touchpoint.attributes
    kind = touchpoint.type
    return StoredEvent(  # positionally: one per event (field order is the state's layout)
        touchpoint.event_id,  # id
        to_us(touchpoint.occurred_at) if occurred_us is None else occurred_us,  # at
        kind,  # type
        touchpoint.department,
        model.stage_for(touchpoint),  # stage
        touchpoint.channel or "",  # channel
        {k: v for k, v in attributes.items() if k in KEPT_ATTRIBUTES},  # attrs
        parse_due(attributes.get("due_at")) if kind == "promise_made" else None,  # due
    )
