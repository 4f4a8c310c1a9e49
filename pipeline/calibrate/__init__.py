"""Calibrate the score model on survey answers: fit each signal's impact to what customers said.

`fit_impacts` (pure, `fit.py`) takes plain survey scores and signal counts; `answers.py`
reads them from the public tables for one model version; `model_file.py` writes the proposed
model, a copy of the live TOML with the fitted impacts and a new version, which `rescore` and
`diff` accept. The method is in docs/score-model.md#fitting-impacts-to-surveys-journeys-calibrate.
"""

from pipeline.calibrate.answers import current_impacts, surveyed_journeys
from pipeline.calibrate.exceptions import CalibrationError
from pipeline.calibrate.fit import (
    Calibration,
    FitSettings,
    FittedImpact,
    SurveyedJourney,
    fit_impacts,
)
from pipeline.calibrate.model_file import (
    proposed_impacts,
    proposed_version,
    write_model_text,
)

__all__ = [
    "Calibration",
    "CalibrationError",
    "FitSettings",
    "FittedImpact",
    "SurveyedJourney",
    "current_impacts",
    "fit_impacts",
    "proposed_impacts",
    "proposed_version",
    "surveyed_journeys",
    "write_model_text",
]
