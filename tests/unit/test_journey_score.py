"""The score: survey blend, bands, clamping, word of mouth, alerts, deadlines and the cap."""

from __future__ import annotations

import copy
import tomllib
from datetime import timedelta

import pytest

from pipeline.contract import Touchpoint
from pipeline.journey import (
    DEFAULT_MODEL_PATH,
    JourneyBook,
    JourneyScore,
    ScoreModel,
    add,
    advance,
    next_deadline,
    parse_score_model,
    promises_due,
    word_of_mouth,
)
from tests.support.touchpoints import MODEL, TouchpointFactory, at, only_journey, play


def score_of(tps: list[Touchpoint], until_hours: float | None = None) -> JourneyScore:
    books, _ = play(tps, until=None if until_hours is None else at(until_hours))
    (score,) = [s for b in books.values() for s in b.scores(MODEL)]
    return score


@pytest.mark.parametrize(
    ("answers", "survey"),
    [({"csat": 1}, 0.0), ({"csat": 5}, 100.0), ({"csat": 4}, 75.0), ({"nps": 0}, 0.0),
     ({"nps": 7}, 70.0), ({"ces": 7}, 100.0), ({"ces": 4}, 50.0),
     ({"csat": 5, "nps": 0}, 50.0), ({"csat": 9}, None), ({"nps": True}, None)],
)  # fmt: skip
def test_survey_answers_map_to_0_100_and_average(
    touchpoint_factory: TouchpointFactory, answers: dict, survey: float | None
) -> None:
    score = score_of([touchpoint_factory("survey_response", 0, **answers)])
    assert score.survey_score == survey
    assert score.score == (100.0 if survey is None else (100.0 + survey) / 2)


def test_answers_of_several_surveys_are_averaged_then_blended(
    touchpoint_factory: TouchpointFactory,
) -> None:
    tps = [
        touchpoint_factory("rework", 0, department="maintenance"),
        touchpoint_factory("survey_response", 1, csat=2),
        touchpoint_factory("survey_response", 2, ces=7),
    ]
    score = score_of(tps)
    assert (score.operational_score, score.survey_score, score.score) == (90.0, 62.5, 76.25)
    assert score.band == "good"


@pytest.mark.parametrize(
    ("reworks", "band"), [(2, "good"), (3, "good"), (4, "neutral"), (5, "neutral"), (6, "poor")]
)
def test_bands(touchpoint_factory: TouchpointFactory, reworks: int, band: str) -> None:
    # 100 - 10 per rework + 4 per proactive update: 88, 78, 68, 58, 48
    tps = [touchpoint_factory("rework", i, department="maintenance") for i in range(reworks)]
    tps += [
        touchpoint_factory("proactive_update", 0.5),
        touchpoint_factory("proactive_update", 0.6),
    ]
    assert score_of(tps).band == band


def test_bands_at_their_edges() -> None:
    assert [MODEL.band(x) for x in (75, 74.99, 50, 49.99)] == ["good", "neutral", "neutral", "poor"]


def test_operational_score_is_clamped(touchpoint_factory: TouchpointFactory) -> None:
    lost = [touchpoint_factory("rework", i, department="billing") for i in range(12)]
    score = score_of(lost)
    assert (score.operational_score, score.lost_points, score.band) == (0.0, 120.0, "poor")
    gained = [touchpoint_factory("proactive_update", i) for i in range(3)]
    assert score_of(gained).operational_score == 100.0


def test_front_desk_and_beyond(touchpoint_factory: TouchpointFactory) -> None:
    tps = [
        touchpoint_factory("rework", 0, department="sales"),
        touchpoint_factory("rework", 1, department="billing", stage="billing"),
        touchpoint_factory("invoice_corrected", 2, department="billing"),
    ]
    score = score_of(tps)
    assert (score.lost_points, score.lost_points_beyond_front_desk) == (30.0, 20.0)
    assert (score.worst_department, score.worst_stage) == ("billing", "billing")


def test_word_of_mouth() -> None:
    assert word_of_mouth(10, 0) == 30 and word_of_mouth(10, 2) == -6
    with pytest.raises(ValueError, match="poor=-1: expected counts of 0 or more"):
        word_of_mouth(1, -1)


def test_turning_poor_is_reported_once(touchpoint_factory: TouchpointFactory) -> None:
    tps = [touchpoint_factory("rework", i, department="delivery") for i in range(7)]
    _, log = play(tps)
    poor = [(i, s.score) for i, c in enumerate(log) for s in c.turned_poor]
    assert poor == [(5, 40.0)]


def test_promises_due_and_next_deadline(touchpoint_factory: TouchpointFactory) -> None:
    made = touchpoint_factory(
        "promise_made", 0, department="field_service", journey_id="case-3",
        promise_id="visit", due_at=at(24).isoformat(), description="technician visit",
    )  # fmt: skip
    book = JourneyBook.for_touchpoint(made)
    add(book, made, MODEL)
    assert next_deadline(book, MODEL) == at(24)
    assert promises_due(book, at(0), horizon_seconds=3600 * 23) == []
    (due,) = promises_due(book, at(0), horizon_seconds=3600 * 24)
    assert (due.journey_id, due.promise_id, due.department, due.due_at) == (
        "case-3", "visit", "field_service", at(24)
    )  # fmt: skip
    assert due.description == "technician visit" and due.event_id == made.event_id
    assert not advance(book, at(24), MODEL)  # not yet past the deadline
    fired = advance(book, at(24) + timedelta(microseconds=1), MODEL)
    assert [s.signal for s in fired.appeared] == ["promise_broken"]
    assert not advance(book, at(30), MODEL).appeared  # once only
    assert promises_due(book, at(0), horizon_seconds=3600 * 48) == []
    assert next_deadline(book, MODEL) == at(14 * 24)  # then it goes quiet


def test_a_journey_goes_quiet_after_the_gap(touchpoint_factory: TouchpointFactory) -> None:
    tp = touchpoint_factory("contact", 0, journey_id="case-4", resolved=True)
    book = JourneyBook.for_touchpoint(tp)
    assert add(book, tp, MODEL).scores[0].status == "open"
    assert not advance(book, at(14 * 24), MODEL)
    (closed,) = advance(book, at(14 * 24 + 1), MODEL).scores
    assert closed.status == "closed"
    assert next_deadline(book, MODEL) is None


def _capped(cap: int) -> ScoreModel:
    raw = copy.deepcopy(tomllib.loads(DEFAULT_MODEL_PATH.read_text()))
    raw["state"]["max_events_per_journey"] = cap
    return parse_score_model(raw)


def test_past_the_cap_a_journey_keeps_its_first_events(
    touchpoint_factory: TouchpointFactory,
) -> None:
    model = _capped(3)
    tps = [touchpoint_factory("rework", h, department="maintenance") for h in (5, 1, 4, 2, 3)]
    books, log = play(tps, model=model)
    journey = only_journey(books)
    assert [e.at for e in journey.events] == [
        e.at for e in sorted(journey.events, key=lambda e: e.at)
    ]
    assert [e.id for e in journey.events] == [tps[1].event_id, tps[3].event_id, tps[4].event_id]
    assert journey.overflow == 2
    assert log[-1].scores[0].overflow_events == 2 and log[-1].scores[0].touchpoint_count == 3
    # the same first three events, whatever the order they came in
    again, _ = play(list(reversed(tps)), model=model)
    assert only_journey(again).events == journey.events
    assert only_journey(again).groups == journey.groups


def test_two_promises_due_at_the_same_time(touchpoint_factory: TouchpointFactory) -> None:
    common = {"department": "delivery", "journey_id": "order-5", "due_at": at(10).isoformat()}
    first = touchpoint_factory("promise_made", 0, promise_id="a", description="parcel", **common)
    second = touchpoint_factory("promise_made", 1, promise_id="b", description="refund", **common)
    books, _ = play([first, second])
    found = promises_due(books["order-5"], at(2), horizon_seconds=3600 * 9)
    assert [(d.promise_id, d.description, d.event_id) for d in found] == [
        ("a", "parcel", first.event_id),
        ("b", "refund", second.event_id),
    ]


def test_advancing_to_a_naive_time_is_refused(touchpoint_factory: TouchpointFactory) -> None:
    tp = touchpoint_factory("contact", 0, journey_id="case-6")
    book = JourneyBook.for_touchpoint(tp)
    with pytest.raises(ValueError, match="expected a timezone-aware datetime"):
        advance(book, at(1).replace(tzinfo=None), MODEL)
