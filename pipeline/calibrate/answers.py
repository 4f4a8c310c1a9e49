"""The fit's input, read from the public tables: surveyed journeys and their signal counts.

Only rows of one model version are read (`score_model`), the live one by default, so the
counts and the survey scores come from the same scoring. The survey score is the one the
engine stored in `journeys.survey_score` (0-100; docs/score-model.md#the-score). A
`long_wait` counts its thresholds exceeded (its stored impact over the model's
per-threshold step), so its fitted impact is a per-threshold step too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.calibrate.fit import SurveyedJourney
from pipeline.journey import ScoreModel
from pipeline.store import Store

_T = "DateTime64(3, 'UTC')"
_SURVEYED = f"""SELECT journey_id, survey_score FROM journeys FINAL
    WHERE survey_score IS NOT NULL AND score_model = {{version:String}}
      AND last_event_at >= {{since:{_T}}} AND last_event_at < {{until:{_T}}}"""
_COUNTS = f"""SELECT journey_id, signal, count() AS n, sum(impact) AS points
    FROM journey_signals FINAL
    WHERE active = 1 AND score_model = {{version:String}}
      AND journey_id IN (SELECT journey_id FROM ({_SURVEYED}))
    GROUP BY journey_id, signal"""
_EARLIEST = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
_LATEST = datetime.fromisoformat("2200-01-01T00:00:00+00:00")


def surveyed_journeys(
    store: Store,
    model: ScoreModel,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SurveyedJourney]:
    """Every journey scored by `model` with a survey answer (last event in [since, until))."""
    params = {
        "version": model.version,
        "since": _clickhouse_time(since or _EARLIEST),
        "until": _clickhouse_time(until or _LATEST),
    }
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    for row in store.query(_COUNTS, params):
        counts[row["journey_id"]][row["signal"]] = _count(row, model)
    rows = store.query(_SURVEYED + " ORDER BY journey_id", params)
    return [
        SurveyedJourney(float(r["survey_score"]), counts.get(r["journey_id"], {})) for r in rows
    ]


def _clickhouse_time(value: datetime) -> str:
    # A bound DateTime64 parameter takes no offset: UTC, to the millisecond.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _count(row: Mapping[str, Any], model: ScoreModel) -> float:
    if row["signal"] == "long_wait" and model.long_wait_step:
        return round(float(row["points"]) / model.long_wait_step)
    return float(row["n"])


def current_impacts(model: ScoreModel) -> dict[str, float]:
    """Signal -> the model's impact per occurrence (`long_wait`: per threshold exceeded)."""
    return {**model.impacts, "long_wait": model.long_wait_step}
