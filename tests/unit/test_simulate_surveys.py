"""Simulated survey answers follow the planted truth and change nothing else the simulator makes."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from pipeline.journey import load_score_model
from pipeline.simulate import SimulationConfig, simulate, surveys
from pipeline.simulate.company import service_visit
from pipeline.simulate.journey import JourneyWriter
from pipeline.simulate.surveys import SURVEY_TRUTH, answers, signal_counts

START = datetime(2026, 3, 1, tzinfo=UTC)


def survey_points(csat: int, nps: int) -> float:
    """The engine's mapping (docs/score-model.md#the-score) of the two answers."""
    return ((csat - 1) / 4 * 100 + nps / 10 * 100) / 2


def test_every_signal_of_the_model_has_a_truth_and_the_truths_are_distinct() -> None:
    model = load_score_model()
    assert set(SURVEY_TRUTH) == {*model.impacts, "long_wait"}
    assert len(set(SURVEY_TRUTH.values())) == len(SURVEY_TRUTH)


@pytest.mark.parametrize(
    "counts", [Counter(), Counter(promise_broken=1), Counter(first_contact_resolution=2)]
)
def test_answers_average_the_planted_satisfaction(counts: Counter[str]) -> None:
    rng = random.Random(5)
    scores = [survey_points(*answers(counts, rng)) for _ in range(4000)]
    planted = surveys.SATISFIED_WITHOUT_SIGNALS + sum(
        SURVEY_TRUTH[k] * n for k, n in counts.items()
    )
    assert sum(scores) / len(scores) == pytest.approx(planted, abs=1.5)
    assert all(0 <= s <= 100 for s in scores)


def test_a_missed_visit_is_felt_as_the_signals_the_engine_finds() -> None:
    writer = JourneyWriter(random.Random(1), "CUST-1", "CASE-1", START)
    service_visit(writer, lambda kind: 1.0 if kind == "visit_promise" else 0.0)
    counts = signal_counts(writer.events, datetime(2026, 4, 1, tzinfo=UTC), load_score_model())
    assert counts["promise_broken"] == 1 and counts["rework"] == 1
    assert counts["repeat_contact"] >= 1 and counts["first_contact_resolution"] == 0


def test_the_planted_truth_changes_the_answers_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = SimulationConfig(customers=150, start=START, malformed_share=0.0)

    def events() -> list[dict[str, object]]:
        return [orjson.loads(d.value) for d in simulate(config)[0]]

    before = events()
    monkeypatch.setattr(surveys, "SURVEY_TRUTH", {k: -v for k, v in SURVEY_TRUTH.items()})
    after = events()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed, "the truth did not reach the answers"
    for old, new in changed:
        assert old["type"] == new["type"] == "survey_response"
        assert {**old, "attributes": None} == {**new, "attributes": None}
