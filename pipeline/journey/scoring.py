"""Scoring: a journey's score from its state, and aggregates over scores.

`snapshot` turns a journey's signals and survey score into its `JourneyScore`: the
operational score (100 plus the signals' impacts, clamped), its blend with the survey, the
band, and where the points went (`attribute`). Over many scores: the word-of-mouth balance
and the points per department. The weights and bands are the score model's
(docs/score-model.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from pipeline.journey.events import from_us
from pipeline.journey.model import ScoreModel
from pipeline.journey.state import JourneyState
from pipeline.journey.types import JourneyScore, Signal

GOOD_STORIES = 3  # people told of a good experience (rule of thumb: docs/concepts.md)
BAD_STORIES = 18  # people told about a bad one
_new_tuple = tuple.__new__


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
    if not signals:
        return _NOTHING  # most journeys: nothing gained or lost
    by_department: dict[str, float] = {}
    by_stage: dict[str, float] = {}
    front_desk = model.front_desk
    total = lost = gained = beyond = 0.0
    for s in signals:
        impact = s.impact
        total += impact
        if impact >= 0:
            gained += impact
            continue
        lost -= impact
        department = s.department
        by_department[department] = by_department.get(department, 0.0) - impact
        by_stage[s.stage] = by_stage.get(s.stage, 0.0) - impact
        if department not in front_desk:
            beyond -= impact
    operational = min(max(100.0 + total, 0.0), 100.0)
    return _new_tuple(Attribution, (  # NamedTuple's own __new__ is Python code: twice as slow
        round(operational, 2), round(lost, 2), round(gained, 2), round(beyond, 2),
        _worst(by_department), _worst(by_stage),
    ))  # fmt: skip


_NOTHING = Attribution(100.0, 0.0, 0.0, 0.0, "", "")  # `attribute` of no signals


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
    version = model.version
    if signals_unchanged and reported is not None and reported.score_model == version:
        operational = reported.operational_score
        lost = reported.lost_points
        gained = reported.gained_points
        beyond = reported.lost_points_beyond_front_desk
        worst_department = reported.worst_department
        worst_stage = reported.worst_stage
    else:
        operational, lost, gained, beyond, worst_department, worst_stage = attribute(signals, model)
    survey = state.survey
    score = operational
    if survey is not None:
        weight = model.survey_weight
        score = round((1 - weight) * score + weight * survey, 2)
    events = state.events
    last = events[-1]
    last_at = last.at
    closed = last.type == "journey_closed" or clock > last_at + model.inactivity_gap_us
    return JourneyScore(  # positionally: 7x faster than by keyword (see `types`)
        state.journey_id,  # journey_id
        customer_id,
        from_us(events[0].at),  # started_at
        from_us(last_at),  # last_event_at
        "closed" if closed else "open",  # status
        score,
        operational,  # operational_score
        survey,  # survey_score
        model.band(score),  # band
        len(events),  # touchpoint_count
        lost,  # lost_points
        gained,  # gained_points
        beyond,  # lost_points_beyond_front_desk
        worst_department,
        worst_stage,
        version,  # score_model
        signals,
        from_us(clock),  # updated_at
        state.overflow,  # overflow_events
    )


def _worst(lost: dict[str, float]) -> str:
    """The name that lost the most points (all above 0), "" for none. Ties go to the
    alphabetically first name so the answer does not depend on order."""
    worst, most = "", 0.0
    for name, points in lost.items():  # a loop: min() with a key function took twice as long
        if points > most or (points == most and name < worst):
            worst, most = name, points
    return worst


def word_of_mouth(good: int, poor: int) -> int:
    """Net stories told for a period: 3 x good journeys - 18 x poor journeys."""
    if good < 0 or poor < 0:
        raise ValueError(f"good={good!r}, poor={poor!r}: expected counts of 0 or more")
    return GOOD_STORIES * good - BAD_STORIES * poor


def word_of_mouth_of(scores: Iterable[JourneyScore]) -> int:
    """The balance over a set of journey scores (one per journey)."""
    bands = [s.band for s in scores]
    return word_of_mouth(bands.count("good"), bands.count("poor"))


def department_points(score: JourneyScore) -> dict[str, tuple[float, float]]:
    """(lost, gained) points per department, both as positive magnitudes.

    Summed over departments, gained - lost is the operational score's distance from 100
    before clamping: every point is attributed.
    """
    points: dict[str, tuple[float, float]] = {}
    for s in score.signals:
        lost, gained = points.get(s.department, (0.0, 0.0))
        if s.impact < 0:
            lost -= s.impact
        else:
            gained += s.impact
        points[s.department] = (lost, gained)
    return points
