"""One journey's state: its events, the signals of each rule group, and its score.

`JourneyState` is updated incrementally (an event re-evaluates only its rule groups) and
`build_journey` computes the same state from scratch; tests hold the two equal. The state
keeps the signals it last reported so a step can say exactly what appeared and what was
retracted.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import NamedTuple

import msgspec

from pipeline.journey import obligations, rules
from pipeline.journey.events import EVENT_ORDER, StoredEvent, from_us
from pipeline.journey.model import ScoreModel
from pipeline.journey.rules import CONTACTS, SURVEY, Context, Outcome, group_keys
from pipeline.journey.types import JourneyScore, Signal

_MEMBER_TYPES = {
    "c": frozenset({"case_opened", "case_resolved", "case_reopened"}),
    "d": frozenset({"billing_dispute_opened", "billing_dispute_resolved"}),
    "p": frozenset({"promise_made", "promise_kept"}),
    "f": frozenset({"feedback_received", "feedback_answered"}),
}


_SIGNAL_ORDER = attrgetter("effective_at", "signal_id")


_ID_ATTRIBUTE = {"c": "case_id", "d": "dispute_id", "p": "promise_id", "f": "feedback_id"}


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


def evaluate(key: str, events: Sequence[StoredEvent], ctx: Context) -> Outcome:
    """The signals (and pending deadline) of one rule group from its events, in order."""
    if key[1] in ":#" and key[0] in "pfcd":  # promise, feedback, case, dispute
        return obligations.evaluate(key[0], events, ctx)
    return rules.evaluate(key, events, ctx)


class Delta(msgspec.Struct):
    """Signals that appeared (new or changed) and were retracted in one journey step."""

    appeared: list[Signal] = msgspec.field(default_factory=list)
    retracted: list[Signal] = msgspec.field(default_factory=list)


def members(events: Sequence[StoredEvent], key: str) -> list[StoredEvent]:
    """The events of one rule group, in event order."""
    if key == CONTACTS:
        return [e for e in events if e.type == "contact"]
    if key == SURVEY:
        return [e for e in events if e.type == "survey_response"]
    if key.startswith("e:"):
        ident = key[2:]
        return [e for e in events if e.id == ident]
    kinds = _MEMBER_TYPES[key[0]]
    if key[1] == "#":  # an opening event without its id is a group of its own
        ident = key[2:]
        return [e for e in events if e.id == ident]
    name, ident = _ID_ATTRIBUTE[key[0]], key[2:]
    # The same test as group_keys, without a call per event (this is on the hot path).
    if key[0] in "cd":  # a case or dispute without an id is the journey's unnamed one
        return [
            e
            for e in events
            if e.type in kinds and ("" if (v := e.attrs.get(name)) is None else str(v)) == ident
        ]
    return [
        e
        for e in events
        if e.type in kinds and (v := e.attrs.get(name)) is not None and str(v) == ident
    ]


def insert(state: JourneyState, event: StoredEvent, ctx: Context, cap: int) -> Delta:
    """Add a new event (not a duplicate) and re-evaluate the rule groups it touches."""
    events = state.events
    if len(events) >= cap and event.order > events[-1].order:
        state.overflow += 1  # past the cap: acknowledged, not scored (docs: Bounded state)
        return Delta()
    bisect.insort(events, event, key=EVENT_ORDER)
    touched = set(group_keys(event))
    if len(events) > cap:
        state.overflow += 1
        touched.update(group_keys(events.pop()))
    return reevaluate(state, touched, ctx, event)


def reevaluate(
    state: JourneyState, keys: Iterable[str], ctx: Context, added: StoredEvent | None = None
) -> Delta:
    """Re-evaluate the named rule groups and record what changed.

    `added` is the event just inserted: its own group is then known without a scan.
    """
    delta = Delta()
    for key in sorted(keys):
        if added is not None and key[2:] == added.id and key[:2] == "e:":
            group = [added]
        else:
            group = members(state.events, key)
        if key == SURVEY:
            state.survey = survey_score(group)
        if key == CONTACTS and key in state.groups:
            known = {(s.signal, *s.evidence_event_ids): s for s in state.groups[key]}
            outcome = evaluate(key, group, ctx._replace(known=known)) if group else None
        else:
            outcome = evaluate(key, group, ctx) if group else None
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


def survey_score(responses: Sequence[StoredEvent]) -> float | None:
    """CSAT (1-5), NPS (0-10) and CES (1-7, 7 easiest) mapped to 0-100 and averaged."""
    points: list[float] = []
    for response in responses:
        for name, low, high in (("csat", 1, 5), ("nps", 0, 10), ("ces", 1, 7)):
            value = response.attrs.get(name)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and low <= value <= high
            ):
                points.append((value - low) / (high - low) * 100)
    return round(sum(points) / len(points), 2) if points else None


class Attribution(NamedTuple):
    """Where a journey's points went: the operational score and the loss split."""

    operational_score: float
    lost_points: float
    gained_points: float
    lost_points_beyond_front_desk: float
    worst_department: str
    worst_stage: str


def attribute(signals: Sequence[Signal], model: ScoreModel) -> Attribution:
    """Operational score and attribution of lost points (signals in their stable order)."""
    by_department: dict[str, float] = {}
    by_stage: dict[str, float] = {}
    total = lost = gained = beyond = 0.0
    for s in signals:
        impact = s.impact
        total += impact
        if impact >= 0:
            gained += impact
            continue
        lost -= impact
        by_department[s.department] = by_department.get(s.department, 0.0) - impact
        by_stage[s.stage] = by_stage.get(s.stage, 0.0) - impact
        if s.department not in model.front_desk:
            beyond -= impact
    operational = min(max(100.0 + total, 0.0), 100.0)
    return Attribution(
        round(operational, 2), round(lost, 2), round(gained, 2), round(beyond, 2),
        _worst(by_department), _worst(by_stage),
    )  # fmt: skip


def _reported_attribution(reported: JourneyScore) -> Attribution:
    return Attribution(
        reported.operational_score, reported.lost_points, reported.gained_points,
        reported.lost_points_beyond_front_desk, reported.worst_department, reported.worst_stage,
    )  # fmt: skip


def snapshot(
    state: JourneyState,
    customer_id: str,
    model: ScoreModel,
    clock: int,
    signals_unchanged: bool = False,
) -> JourneyScore:
    """The journey's score now: operational, survey blend, band and attribution.

    With `signals_unchanged` the attribution of the last reported snapshot is reused: it
    is a function of the signals alone, and re-summing them is most of a snapshot's cost.
    """
    signals = state.signals()
    reported = state.reported
    if signals_unchanged and reported is not None and reported.score_model == model.version:
        points = _reported_attribution(reported)
    else:
        points = attribute(signals, model)
    survey = state.survey
    score = points.operational_score
    if survey is not None:
        score = round((1 - model.survey_weight) * score + model.survey_weight * survey, 2)
    last = state.last
    closed = last.type == "journey_closed" or clock > last.at + model.inactivity_gap_us
    return JourneyScore(
        journey_id=state.journey_id,
        customer_id=customer_id,
        started_at=from_us(state.first.at),
        last_event_at=from_us(last.at),
        status="closed" if closed else "open",
        score=score,
        operational_score=points.operational_score,
        survey_score=survey,
        band=model.band(score),
        touchpoint_count=len(state.events),
        lost_points=points.lost_points,
        gained_points=points.gained_points,
        lost_points_beyond_front_desk=points.lost_points_beyond_front_desk,
        worst_department=points.worst_department,
        worst_stage=points.worst_stage,
        score_model=model.version,
        signals=signals,
        updated_at=from_us(clock),
        overflow_events=state.overflow,
    )


def _worst(lost: dict[str, float]) -> str:
    # Ties go to the alphabetically first name so the answer does not depend on order.
    return min(lost.items(), key=lambda item: (-item[1], item[0]))[0] if lost else ""
