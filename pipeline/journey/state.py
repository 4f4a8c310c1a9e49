"""One journey's state: its events, the signals and deadlines of each rule group.

`JourneyState` is updated incrementally (an event re-evaluates only its rule groups) and
`build_journey` computes the same state from scratch; tests hold the two equal. The state
keeps the score it last reported so a step can say exactly what appeared and what was
retracted. Its score is computed from it by `scoring.snapshot`; the book's assembly
(`assembly`) decides which journey an event joins.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from operator import attrgetter

import msgspec

from pipeline.journey import obligations, rules
from pipeline.journey.events import EVENT_ORDER, StoredEvent
from pipeline.journey.rules import (
    CONTACTS,
    OBLIGATIONS,
    SURVEY,
    Context,
    GroupKey,
    Outcome,
    group_keys,
    members,
    own_group,
    parse_group,
    survey_score,
)
from pipeline.journey.types import JourneyScore, Signal

_SIGNAL_ORDER = attrgetter("effective_at", "signal_id")
_new_tuple = tuple.__new__


class JourneyState(msgspec.Struct, kw_only=True, dict=True):
    """A journey in a book. `events` are sorted by (occurred_at, event_id) and capped."""

    journey_id: str
    events: list[StoredEvent] = msgspec.field(default_factory=list)
    groups: dict[str, list[Signal]] = msgspec.field(default_factory=dict)
    deadlines: dict[str, int] = msgspec.field(default_factory=dict)
    survey: float | None = None
    overflow: int = 0
    reported: JourneyScore | None = None  # last snapshot handed out, without its signals

    @property
    def first(self) -> StoredEvent:
        return self.events[0]

    @property
    def last(self) -> StoredEvent:
        return self.events[-1]

    def signals(self) -> list[Signal]:
        """All current signals, in a stable order (effective time, then id)."""
        # Cached until a group changes (not serialised): most events change no signal.
        cached: list[Signal] | None = self.__dict__.get("_sorted")
        if cached is None:
            cached = [s for group in self.groups.values() for s in group]
            cached.sort(key=_SIGNAL_ORDER)
            self._sorted = cached
        return list(cached)


def evaluate(group: GroupKey, events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """The signals (and pending deadline) of one rule group from its events, in order."""
    if group.kind in OBLIGATIONS:
        return obligations.evaluate(group.kind, events, ctx)
    return rules.evaluate(group.kind, events, ctx)


class Delta(msgspec.Struct):
    """Signals that appeared (new or changed) and were retracted in one journey step."""

    appeared: list[Signal] = msgspec.field(default_factory=list)
    retracted: list[Signal] = msgspec.field(default_factory=list)


def insert(state: JourneyState, event: StoredEvent, ctx: Context, cap: int) -> Delta:
    """Add a new event (not a duplicate) and re-evaluate the rule groups it touches."""
    events = state.events
    latest = not events or EVENT_ORDER(event) > EVENT_ORDER(events[-1])
    if latest and len(events) >= cap:
        state.overflow += 1  # past the cap: acknowledged, not scored (docs: Bounded state)
        return Delta()
    if latest:
        events.append(event)  # most events: no search
    else:
        bisect.insort(events, event, key=EVENT_ORDER)
    touched: Iterable[str] = group_keys(event)  # distinct keys
    if len(events) > cap:
        state.overflow += 1
        touched = {*touched, *group_keys(events.pop())}
    return reevaluate(state, touched, ctx, event)


def reevaluate(
    state: JourneyState, keys: Iterable[str], ctx: Context, added: StoredEvent | None = None
) -> Delta:
    """Re-evaluate the named rule groups and record what changed.

    `added` is the event just inserted: its own group is then known without a scan.
    """
    delta = Delta()
    own = own_group(added.id) if added is not None else None
    for key in sorted(keys):
        group = parse_group(key)
        events = [added] if added is not None and key == own else members(state.events, group)
        if key == SURVEY:
            state.survey = survey_score(events)
        if key == CONTACTS and key in state.groups:
            known = {(s.signal, *s.evidence_event_ids): s for s in state.groups[key]}
            with_known = _new_tuple(Context, (*ctx[:4], known))  # ctx._replace took 1.3 us
            outcome = evaluate(group, events, with_known) if events else None
        else:
            outcome = evaluate(group, events, ctx) if events else None
        _replace_group(state, key, outcome.signals if outcome else [], delta)
        if outcome is not None and outcome.deadline is not None:
            state.deadlines[key] = outcome.deadline
        else:
            state.deadlines.pop(key, None)
    return delta


def _replace_group(state: JourneyState, key: str, new: list[Signal], delta: Delta) -> None:
    old = state.groups.get(key, [])
    if old == new:
        return
    state.__dict__.pop("_sorted", None)
    new_ids = {s.signal_id for s in new}
    delta.retracted.extend(s for s in old if s.signal_id not in new_ids)
    delta.appeared.extend(s for s in new if s not in old)
    if new:
        state.groups[key] = new
    else:
        state.groups.pop(key, None)


def due_groups(state: JourneyState, clock: int) -> list[str]:
    """Rule groups whose deadline the clock has passed."""
    return [key for key, deadline in state.deadlines.items() if clock > deadline]


def build_journey(
    journey_id: str, events: Sequence[StoredEvent], ctx: Context, cap: int
) -> JourneyState:
    """A journey computed from scratch from its events (the reference for incremental)."""
    ordered = sorted(events, key=EVENT_ORDER)
    state = JourneyState(journey_id=journey_id, events=ordered[:cap], overflow=len(ordered[cap:]))
    keys = {key for e in state.events for key in group_keys(e)}
    reevaluate(state, keys, ctx)
    return state
