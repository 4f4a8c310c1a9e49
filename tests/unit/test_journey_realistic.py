"""Five realistic journeys, end to end: each one's band and the department that lost most."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.journey import JourneyScore
from pipeline.journey.scoring import department_points, word_of_mouth_of
from tests.support.touchpoints import MODEL, TouchpointFactory, at, play

Step = tuple[str, float, str, dict[str, Any]]  # type, hours, department, attributes


def due(hours: float) -> str:
    return at(hours).isoformat()


@dataclass(frozen=True)
class Case:
    name: str
    journey_id: str | None
    steps: list[Step]
    band: str
    worst_department: str
    score: float


CASES = [
    Case(
        "car service: a friendly front desk does not rescue a redone repair and a wrong invoice",
        "service-4711",
        [
            ("contact", 0, "customer_service", {"wait_seconds": 30, "resolved": True}),
            ("appointment_scheduled", 0.2, "maintenance", {"appointment_id": "A-1"}),
            ("promise_made", 0.3, "maintenance", {"promise_id": "ready", "due_at": due(56),
                                                   "description": "car ready on Tuesday"}),
            ("proactive_update", 30, "customer_service", {"about": "parts arrived"}),
            ("appointment_completed", 48, "maintenance", {"appointment_id": "A-1"}),
            ("rework", 80, "maintenance", {"reason": "brakes squeal, repair redone"}),
            ("invoice_issued", 90, "billing", {"invoice_id": "I-9", "amount": 840}),
            ("invoice_corrected", 100, "billing", {"invoice_id": "I-9", "amount": 610}),
            ("survey_response", 120, "customer_service", {"csat": 3}),
        ],
        band="neutral", worst_department="maintenance", score=61.0,
    ),
    Case(
        "online order: promise kept, customer told before asking, happy survey",
        "order-1001",
        [
            ("order_placed", 0, "sales", {"order_id": "O-1"}),
            ("promise_made", 0.1, "delivery", {"promise_id": "eta", "due_at": due(72),
                                                "description": "delivery by Thursday"}),
            ("proactive_update", 40, "delivery", {"about": "parcel out for delivery"}),
            ("promise_kept", 50, "delivery", {"promise_id": "eta"}),
            ("order_delivered", 50, "delivery", {"order_id": "O-1"}),
            ("survey_response", 60, "sales", {"csat": 5, "nps": 10}),
        ],
        band="good", worst_department="", score=100.0,
    ),
    Case(
        "billing problem: long waits, repeat calls, a broken call-back and a slow dispute",
        "dispute-77",
        [
            ("invoice_issued", 0, "billing", {"invoice_id": "I-1", "amount": 99}),
            ("contact", 24, "customer_service", {"wait_seconds": 900, "resolved": False}),
            ("handoff", 24.5, "customer_service", {"to_department": "billing",
                                                    "context_transferred": False}),
            ("promise_made", 25, "billing", {"promise_id": "cb", "due_at": due(48),
                                              "description": "call back tomorrow"}),
            ("billing_dispute_opened", 26, "billing", {"dispute_id": "D-1"}),
            ("contact", 72, "customer_service", {"wait_seconds": 100, "resolved": False}),
            ("feedback_received", 80, "billing", {"feedback_id": "F-1", "sentiment": -0.9}),
            ("invoice_corrected", 300, "billing", {"invoice_id": "I-1", "amount": 49}),
            ("billing_dispute_resolved", 310, "billing", {"dispute_id": "D-1"}),
        ],
        band="poor", worst_department="billing", score=38.0,
    ),
    Case(
        "broadband fault without a case number: the field visit was missed and redone",
        None,
        [
            ("contact", 0, "customer_service", {"resolved": False, "reason": "no internet"}),
            ("contact", 20, "customer_service", {"resolved": True}),
            ("case_opened", 20.5, "customer_service", {"case_id": "K-5"}),
            ("handoff", 21, "customer_service", {"to_department": "field_service",
                                                  "context_transferred": True}),
            ("promise_made", 21.5, "field_service", {"promise_id": "visit", "due_at": due(44),
                                                      "description": "technician visit"}),
            ("appointment_missed", 44, "field_service", {"appointment_id": "V-1"}),
            ("promise_kept", 68, "field_service", {"promise_id": "visit"}),
            ("case_resolved", 68.5, "field_service", {"case_id": "K-5"}),
            ("case_reopened", 90, "field_service", {"case_id": "K-5"}),
            ("case_resolved", 100, "field_service", {"case_id": "K-5"}),
        ],
        band="neutral", worst_department="field_service", score=70.0,
    ),
    Case(
        "late delivery recovered: told early, fixed fast, answered feedback",
        "order-2002",
        [
            ("order_placed", 0, "sales", {"order_id": "O-2"}),
            ("order_delayed", 30, "delivery", {"order_id": "O-2"}),
            ("proactive_update", 30.5, "delivery", {"about": "new delivery date"}),
            ("promise_made", 31, "delivery", {"promise_id": "new-eta", "due_at": due(96),
                                               "description": "delivery by Saturday"}),
            ("feedback_received", 40, "sales", {"feedback_id": "F-2"}),
            ("feedback_answered", 44, "sales", {"feedback_id": "F-2"}),
            ("promise_kept", 90, "delivery", {"promise_id": "new-eta"}),
            ("contact", 100, "customer_service", {"resolved": True, "wait_seconds": 20}),
            ("survey_response", 110, "sales", {"nps": 9, "ces": 6}),
        ],
        band="good", worst_department="delivery", score=92.84,
    ),
]  # fmt: skip


def score_of(case: Case) -> JourneyScore:
    factory = TouchpointFactory(customer_id="cust-9")
    tps = [
        factory(kind, hours, department=dept, journey_id=case.journey_id, channel="phone", **attrs)
        for kind, hours, dept, attrs in case.steps
    ]
    books, _ = play(tps, until=at(24 * 30))
    (score,) = [s for book in books.values() for s in book.scores(MODEL)]
    return score


@pytest.mark.parametrize("case", CASES, ids=[c.name.split(":")[0] for c in CASES])
def test_realistic_journey(case: Case) -> None:
    score = score_of(case)
    assert (score.band, score.worst_department, score.score) == (
        case.band, case.worst_department, case.score
    ), [(s.signal, s.department, s.impact) for s in score.signals]  # fmt: skip
    points = department_points(score)
    if case.worst_department:
        lost = {department: lost for department, (lost, _) in points.items()}
        assert lost[case.worst_department] == max(lost.values())
    assert score.status == "closed"  # a month later every journey has gone quiet


def test_the_car_service_loses_its_points_beyond_the_front_desk() -> None:
    score = score_of(CASES[0])
    assert score.lost_points == 35 and score.lost_points_beyond_front_desk == 35
    assert score.gained_points == 7  # first-contact resolution and the proactive update
    assert score.operational_score == 72 and score.survey_score == 50


def test_word_of_mouth_of_the_five_journeys() -> None:
    # two good journeys tell 6 people, the poor one tells 18
    assert word_of_mouth_of(score_of(case) for case in CASES) == 3 * 2 - 18 * 1
