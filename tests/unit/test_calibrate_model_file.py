"""The proposed model: the live file with the fitted impacts, loadable, nothing else changed."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.calibrate import (
    CalibrationError,
    FitSettings,
    SurveyedJourney,
    current_impacts,
    fit_impacts,
    proposed_impacts,
    proposed_version,
    write_model_text,
)
from pipeline.journey import DEFAULT_MODEL_PATH, load_score_model

NOW = datetime(2026, 12, 3, 15, 44, tzinfo=UTC)


def calibrated(truth: dict[str, float]) -> tuple[dict[str, float], str]:
    model = load_score_model()
    rng = random.Random(3)
    journeys = []
    for _ in range(300):
        counts = {k: float(rng.choice((0, 0, 1, 2))) for k in truth}
        score = 85 + sum(truth[k] * c for k, c in counts.items())
        journeys.append(SurveyedJourney(score, counts))
    calibration = fit_impacts(journeys, current_impacts(model), FitSettings(0.0, 30, 10))
    values = proposed_impacts(calibration, model)
    source = DEFAULT_MODEL_PATH.read_text()
    return values, write_model_text(source, proposed_version("v1", NOW), values, "a note\nline 2")


def test_the_proposal_loads_with_the_new_version_and_the_fitted_impacts(tmp_path: Path) -> None:
    truth = {"rework": -12.26, "promise_broken": -20.0, "proactive_update": 6.04, "long_wait": -3}
    values, text = calibrated(truth)
    path = tmp_path / "proposed.toml"
    path.write_text(text)
    proposed, live = load_score_model(path), load_score_model()
    assert proposed.version == "v1-cal202612031544"
    assert proposed.impacts["rework"] == -12.3
    assert proposed.impacts["promise_broken"] == -20.0
    assert proposed.impacts["proactive_update"] == 6.0
    assert (proposed.long_wait_step, proposed.long_wait_max) == (-3.0, -12.0)
    assert values["impacts.rework"] == -12.3
    unfitted = set(live.impacts) - {"rework", "promise_broken", "proactive_update"}
    assert {k: proposed.impacts[k] for k in unfitted} == {k: live.impacts[k] for k in unfitted}
    assert (proposed.stages, proposed.wait_threshold_s) == (live.stages, live.wait_threshold_s)


def test_only_the_version_and_the_fitted_lines_differ_and_the_note_is_on_top() -> None:
    _, text = calibrated({"rework": -12.0, "fast_fix": 5.0})
    source = DEFAULT_MODEL_PATH.read_text().splitlines()
    lines = text.splitlines()
    assert lines[:2] == ["# a note", "# line 2"]
    changed = [new for old, new in zip(source, lines[2:], strict=True) if old != new]
    assert changed == ['version = "v1-cal202612031544"', "rework = -12", "fast_fix = 5"]


def test_an_impact_fitted_on_the_wrong_side_of_zero_is_written_as_zero() -> None:
    values, text = calibrated({"rework": 4.0, "first_contact_resolution": -2.0})
    assert values["impacts.rework"] == 0.0
    assert values["impacts.first_contact_resolution"] == 0.0
    assert "rework = 0\n" in text and "first_contact_resolution = 0\n" in text


def test_versions_keep_one_calibration_suffix_and_stay_valid() -> None:
    assert proposed_version("v1", NOW) == "v1-cal202612031544"
    assert proposed_version("v1-cal202601010000", NOW) == "v1-cal202612031544"
    assert len(proposed_version("x" * 64, NOW)) <= 64


def test_a_file_without_the_line_to_change_is_refused() -> None:
    source = DEFAULT_MODEL_PATH.read_text().replace("fast_fix = 3\n", "")
    with pytest.raises(CalibrationError, match=r"no line for impacts.fast_fix"):
        write_model_text(source, "v2", {"impacts.fast_fix": 1.0}, "")


def test_an_invalid_version_is_refused_by_the_model_loader() -> None:
    from pipeline.journey import ScoreModelError

    with pytest.raises(ScoreModelError, match="key 'version'"):
        write_model_text(DEFAULT_MODEL_PATH.read_text(), "v 2!", {}, "")
