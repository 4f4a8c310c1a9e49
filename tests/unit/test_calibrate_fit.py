"""The survey fit: exact on noiseless answers, honest intervals, clear refusals, invariances."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.calibrate import CalibrationError, FitSettings, SurveyedJourney, fit_impacts

CURRENT = {"repeat_contact": -8.0, "rework": -10.0, "promise_kept": 2.0, "fast_fix": 3.0}
TRUTH = {"repeat_contact": -14.0, "rework": -6.0, "promise_kept": 5.0, "fast_fix": 1.0}
EXACT = FitSettings(ridge=0.0, min_journeys=10, min_per_signal=3)


def journeys_from(
    truth: dict[str, float], n: int, *, seed: int = 1, noise: float = 0.0, level: float = 80.0
) -> list[SurveyedJourney]:
    rng = random.Random(seed)
    made = []
    for _ in range(n):
        counts = {k: float(rng.choice((0, 0, 0, 1, 1, 2))) for k in truth}
        score = level + sum(truth[k] * c for k, c in counts.items()) + rng.gauss(0, noise)
        made.append(SurveyedJourney(score, {k: c for k, c in counts.items() if c}))
    return made


def test_noiseless_answers_give_back_the_exact_impacts_and_level() -> None:
    calibration = fit_impacts(journeys_from(TRUTH, 200), CURRENT, EXACT)
    for signal, impact in calibration.fitted().items():
        assert impact == pytest.approx(TRUTH[signal], abs=1e-9)
    assert calibration.intercept == pytest.approx(80.0)
    assert calibration.r_squared == pytest.approx(1.0)
    assert calibration.r_squared_current < 0.95
    assert calibration.journeys == 200


@given(
    truth=st.fixed_dictionaries(
        {k: st.floats(-30, 30, allow_nan=False).map(lambda v: round(v, 2)) for k in CURRENT}
    ),
    seed=st.integers(0, 10_000),
    level=st.floats(0, 100),
)
@settings(max_examples=40, deadline=None)
def test_any_noiseless_truth_is_recovered(truth: dict[str, float], seed: int, level: float) -> None:
    calibration = fit_impacts(journeys_from(truth, 120, seed=seed, level=level), CURRENT, EXACT)
    for signal, impact in calibration.fitted().items():
        assert impact == pytest.approx(truth[signal], abs=1e-6)


@given(seed=st.integers(0, 10_000), shift=st.floats(-50, 50))
@settings(max_examples=25, deadline=None)
def test_order_does_not_matter_and_a_shift_moves_only_the_level(seed: int, shift: float) -> None:
    journeys = journeys_from(TRUTH, 80, seed=seed, noise=8.0)
    fit = FitSettings(ridge=5.0, min_journeys=10, min_per_signal=3)
    base = fit_impacts(journeys, CURRENT, fit)
    shuffled = journeys[:]
    random.Random(seed).shuffle(shuffled)
    moved = [SurveyedJourney(j.survey_score + shift, j.counts) for j in journeys]
    for other in (fit_impacts(shuffled, CURRENT, fit), fit_impacts(moved, CURRENT, fit)):
        assert other.fitted() == pytest.approx(base.fitted())
        assert other.r_squared == pytest.approx(base.r_squared)
    assert fit_impacts(moved, CURRENT, fit).intercept == pytest.approx(base.intercept + shift)


def test_the_ridge_pulls_towards_the_current_model_not_towards_zero() -> None:
    journeys = journeys_from(TRUTH, 60, noise=5.0)
    loose = fit_impacts(journeys, CURRENT, FitSettings(0.0, 10, 3)).fitted()
    firm = fit_impacts(journeys, CURRENT, FitSettings(1e9, 10, 3)).fitted()
    assert firm == pytest.approx(CURRENT, abs=1e-3)
    middle = fit_impacts(journeys, CURRENT, FitSettings(50.0, 10, 3)).fitted()
    for signal, value in middle.items():
        low, high = sorted((loose[signal], CURRENT[signal]))
        assert low - 1e-9 <= value <= high + 1e-9


def test_the_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    covered = total = 0
    for seed in range(60):
        calibration = fit_impacts(journeys_from(TRUTH, 150, seed=seed, noise=12.0), CURRENT, EXACT)
        for impact in calibration.impacts:
            assert impact.low is not None and impact.high is not None
            covered += impact.low <= TRUTH[impact.signal] <= impact.high
            total += 1
    assert 0.9 <= covered / total <= 0.99


def test_a_signal_seen_in_too_few_journeys_keeps_its_impact_and_is_not_fitted() -> None:
    journeys = [
        SurveyedJourney(j.survey_score, {k: c for k, c in j.counts.items() if k != "fast_fix"})
        for j in journeys_from(TRUTH, 100)
    ]
    journeys[0] = SurveyedJourney(journeys[0].survey_score + 3.0, {"fast_fix": 1.0})
    calibration = fit_impacts(journeys, CURRENT, FitSettings(0.0, 10, 2))
    fast_fix = next(i for i in calibration.impacts if i.signal == "fast_fix")
    assert (fast_fix.fitted, fast_fix.journeys, fast_fix.current) == (None, 1, 3.0)
    assert "fast_fix" not in calibration.fitted()
    assert calibration.fitted()["rework"] == pytest.approx(TRUTH["rework"], abs=0.5)


def test_too_few_answers_are_refused_saying_how_many_and_what_is_needed() -> None:
    with pytest.raises(CalibrationError, match=r"12 journeys with a survey answer: at least 30"):
        fit_impacts(journeys_from(TRUTH, 12), CURRENT)
    quiet = [SurveyedJourney(70.0, {"rework": 1.0})] * 5 + [SurveyedJourney(90.0, {})] * 40
    with pytest.raises(CalibrationError, match=r"no signal occurs in at least 10 .* rework in 5"):
        fit_impacts(quiet, CURRENT)


@pytest.mark.parametrize(
    ("journey", "named"),
    [
        (SurveyedJourney(float("nan"), {}), "survey score nan"),
        (SurveyedJourney(50.0, {"teleport": 1.0}), "'teleport' has no impact"),
        (SurveyedJourney(50.0, {"rework": -1.0}), "count of rework = -1.0"),
    ],
)
def test_bad_input_is_named(journey: SurveyedJourney, named: str) -> None:
    with pytest.raises(CalibrationError, match=named):
        fit_impacts([*journeys_from(TRUTH, 40), journey], CURRENT)


def test_signals_that_always_come_together_need_a_ridge() -> None:
    twins = [SurveyedJourney(80.0 - 9 * n, {"rework": n, "repeat_contact": n}) for n in (0, 1, 2)]
    journeys = twins * 20
    with pytest.raises(CalibrationError, match="raise --ridge above 0"):
        fit_impacts(journeys, CURRENT, EXACT)
    split = fit_impacts(journeys, CURRENT, FitSettings(1.0, 10, 3)).fitted()
    assert split["rework"] + split["repeat_contact"] == pytest.approx(-9.0, abs=0.2)


@pytest.mark.parametrize(
    "bad", [{"ridge": -1.0}, {"min_journeys": 1}, {"min_per_signal": 0}], ids=str
)
def test_bad_fit_settings_are_named(bad: dict[str, float]) -> None:
    with pytest.raises(CalibrationError, match=next(iter(bad))):
        FitSettings(**bad)  # type: ignore[arg-type]
