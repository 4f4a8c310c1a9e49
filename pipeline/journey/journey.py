"""One journey's state: its events, the signals of each rule group, and its score.

`JourneyState` is updated incrementally (an event re-evaluates only its rule groups) and
`build_journey` computes the same state from scratch; tests hold the two equal. The state
keeps the signals it last reported so a step can say exactly what appeared and what was
retracted.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import msgspec

from pipeline.journey.events import StoredEvent, from_us
from pipeline.journey.model import ScoreModel
from pipeline.journey.rules import CONTACTS, SURVEY, Context, evaluate, group_keys
from pipeline.journey.types import JourneyScore, Signal

_MEMBER_TYPES = {
    "c": frozenset({"case_opened", "case_resolved", "case_reopened"}),
    "d": frozenset({"billing_dispute_opened", "billing_dispute_resolved"}),
    "p": frozenset({"promise_made", "promise_kept"}),
    "f": frozenset({"feedback_received", "feedback_answered"}),
}


class JourneyState(msgspec.Struct, kw_only=True):
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
        found = [s for group in self.groups.values() for s in group]
        found.sort(key=lambda s: (s.effective_at, s.signal_id))
        return found


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
        return [e for e in events if e.id == key[2:]]
    kinds = _MEMBER_TYPES[key[0]]
    return [e for e in events if e.type in kinds and key in group_keys(e)]


def insert(state: JourneyState, event: StoredEvent, ctx: Context, cap: int) -> Delta:
    """Add a new event (not a duplicate) and re-evaluate the rule groups it touches."""
    events = state.events
    if len(events) >= cap and event.order > events[-1].order:
        state.overflow += 1  # past the cap: acknowledged, not scored (docs: Bounded state)
        return Delta()
    bisect.insort(events, event, key=lambda e: e.order)
    touched = set(group_keys(event))
    if len(events) > cap:
        state.overflow += 1
        touched.update(group_keys(events.pop()))
    return reevaluate(state, touched, ctx)


def reevaluate(state: JourneyState, keys: Iterable[str], ctx: Context) -> Delta:
    """Re-evaluate the named rule groups and record what changed."""
    delta = Delta()
    for key in sorted(keys):
        group = members(state.events, key)
        if key == SURVEY:
            state.survey = survey_score(group)
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
    ordered = sorted(events, key=lambda e: e.order)
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


def snapshot(state: JourneyState, customer_id: str, model: ScoreModel, clock: int) -> JourneyScore:
    """The journey's score now: operational, survey blend, band and attribution."""
    signals = state.signals()
    total = sum(s.impact for s in signals)
    lost_by_department: dict[str, float] = {}
    lost_by_stage: dict[str, float] = {}
    lost = gained = beyond = 0.0
    for s in signals:
        if s.impact >= 0:
            gained += s.impact
            continue
        lost -= s.impact
        lost_by_department[s.department] = lost_by_department.get(s.department, 0.0) - s.impact
        lost_by_stage[s.stage] = lost_by_stage.get(s.stage, 0.0) - s.impact
        if s.department not in model.front_desk:
            beyond -= s.impact
    operational = min(max(100.0 + total, 0.0), 100.0)
    survey = state.survey
    score = (
        operational
        if survey is None
        else ((1 - model.survey_weight) * operational + model.survey_weight * survey)
    )
    last = state.last
    closed = last.type == "journey_closed" or clock > last.at + model.inactivity_gap_us
    return JourneyScore(
        journey_id=state.journey_id,
        customer_id=customer_id,
        started_at=from_us(state.first.at),
        last_event_at=from_us(last.at),
        status="closed" if closed else "open",
        score=round(score, 2),
        operational_score=round(operational, 2),
        survey_score=survey,
        band=model.band(round(score, 2)),
        touchpoint_count=len(state.events),
        lost_points=round(lost, 2),
        gained_points=round(gained, 2),
        lost_points_beyond_front_desk=round(beyond, 2),
        worst_department=_worst(lost_by_department),
        worst_stage=_worst(lost_by_stage),
        score_model=model.version,
        signals=signals,
        updated_at=from_us(clock),
        overflow_events=state.overflow,
    )


def _worst(lost: dict[str, float]) -> str:
    # Ties go to the alphabetically first name so the answer does not depend on order.
    return min(lost.items(), key=lambda item: (-item[1], item[0]))[0] if lost else ""
