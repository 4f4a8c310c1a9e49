"""The score model: every weight, threshold, window and default as validated configuration.

`load_score_model()` reads `score_model_v1.toml` (or the file given) and checks every key:
an unknown key, a missing key or a value of the wrong kind raises `ScoreModelError` naming
the key, the value and what was expected, so a typo never silently falls back to a default.
Durations are converted once to integer microseconds, the engine's internal time unit.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES, Touchpoint
from pipeline.journey.types import ScoreModelError

DEFAULT_MODEL_PATH = Path(__file__).with_name("score_model_v1.toml")
US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR

NEGATIVE_SIGNALS = (
    "repeat_contact", "context_lost", "promise_broken", "promise_kept_late",
    "feedback_unanswered", "rework", "slow_resolution",
)  # fmt: skip
POSITIVE_SIGNALS = ("promise_kept", "first_contact_resolution", "proactive_update", "fast_fix")
_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TOP_KEYS = ("version", "front_desk", "journey", "bands", "impacts", "windows", "long_wait",
             "resolution_target_hours", "stages", "state")  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScoreModel:
    """A validated score model. Build it with `load_score_model`, not by hand."""

    version: str
    front_desk: frozenset[str]
    inactivity_gap_us: int
    survey_weight: float
    good_at_least: float
    poor_below: float
    impacts: Mapping[str, float]
    repeat_contact_us: int
    feedback_answer_us: int
    fast_fix_us: int
    long_wait_step: float
    long_wait_max: float
    wait_threshold_s: Mapping[str, float]
    resolution_target_us: Mapping[str, int]
    stages: Mapping[str, str]
    max_events_per_journey: int
    retention_us: int

    def stage_for(self, touchpoint: Touchpoint) -> str:
        """The touchpoint's stage as emitted, else the model's default for its event type."""
        if touchpoint.stage:
            return touchpoint.stage
        return self.stages.get(touchpoint.type, self.stages["default"])

    def wait_threshold(self, channel: str) -> float:
        """Seconds a customer may wait on `channel` before it counts as a long wait."""
        return self.wait_threshold_s.get(channel, self.wait_threshold_s["default"])

    def resolution_target(self, department: str) -> int:
        """Microseconds a case or dispute opened by `department` may stay open."""
        return self.resolution_target_us.get(department, self.resolution_target_us["default"])

    def band(self, score: float) -> str:
        """`good`, `neutral` or `poor` for a journey score."""
        if score >= self.good_at_least:
            return "good"
        return "poor" if score < self.poor_below else "neutral"


def load_score_model(path: Path | None = None) -> ScoreModel:
    """Read and validate a score model file (default: the packaged v1 model)."""
    source = path or DEFAULT_MODEL_PATH
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScoreModelError(f"score model {source}: cannot read it ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScoreModelError(f"score model {source}: not valid TOML ({exc})") from exc
    try:
        return parse_score_model(raw)
    except ScoreModelError as exc:
        raise ScoreModelError(f"score model {source}: {exc}") from None


def parse_score_model(raw: Mapping[str, Any]) -> ScoreModel:
    """Validate an already-parsed model document (the TOML file's content)."""
    _only_keys("", raw, _TOP_KEYS)
    journey, bands, windows = _table(raw, "journey"), _table(raw, "bands"), _table(raw, "windows")
    wait, state = _table(raw, "long_wait"), _table(raw, "state")
    _only_keys("journey", journey, ("inactivity_gap_days", "survey_weight"))
    _only_keys("bands", bands, ("good_at_least", "poor_below"))
    _only_keys(
        "windows", windows, ("repeat_contact_days", "feedback_answer_days", "fast_fix_hours")
    )
    _only_keys("long_wait", wait, ("impact_per_threshold", "max_impact", "threshold_seconds"))
    _only_keys("state", state, ("max_events_per_journey", "retention_days"))
    good, poor = _number(bands, "bands.good_at_least"), _number(bands, "bands.poor_below")
    if not 0 <= poor <= good <= 100:
        raise ScoreModelError(
            f"key 'bands': good_at_least={good!r}, poor_below={poor!r}: "
            "expected 0 <= poor_below <= good_at_least <= 100"
        )
    gap = _positive(journey, "journey.inactivity_gap_days")
    retention = _positive(state, "state.retention_days")
    if retention < gap:
        raise ScoreModelError(
            f"key 'state.retention_days' = {retention!r}: expected at least "
            f"journey.inactivity_gap_days ({gap!r}), or late events could split retired journeys"
        )
    return ScoreModel(
        version=_version(raw),
        front_desk=frozenset(_slugs(raw, "front_desk")),
        inactivity_gap_us=round(gap * US_PER_DAY),
        survey_weight=_fraction(journey, "journey.survey_weight"),
        good_at_least=good,
        poor_below=poor,
        impacts=_impacts(_table(raw, "impacts")),
        repeat_contact_us=round(_positive(windows, "windows.repeat_contact_days") * US_PER_DAY),
        feedback_answer_us=round(_positive(windows, "windows.feedback_answer_days") * US_PER_DAY),
        fast_fix_us=round(_positive(windows, "windows.fast_fix_hours") * US_PER_HOUR),
        long_wait_step=_signed(wait, "long_wait.impact_per_threshold", negative=True),
        long_wait_max=_signed(wait, "long_wait.max_impact", negative=True),
        wait_threshold_s=_per_name(wait, "long_wait.threshold_seconds", CHANNELS, 1.0),
        resolution_target_us=_per_name(raw, "resolution_target_hours", None, US_PER_HOUR, int),
        stages=_stages(_table(raw, "stages")),
        max_events_per_journey=_count(state, "state.max_events_per_journey"),
        retention_us=round(retention * US_PER_DAY),
    )


def _version(raw: Mapping[str, Any]) -> str:
    value = raw.get("version")
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value):
        raise ScoreModelError(
            f"key 'version' = {value!r}: expected a non-empty string of letters, digits, "
            "'.', '_' or '-' (at most 64), e.g. \"v1\""
        )
    return value


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(_leaf(key))
    if not isinstance(value, Mapping):
        raise ScoreModelError(f"key '{key}' = {value!r}: expected a table")
    return value


def _only_keys(where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            raise ScoreModelError(
                f"key '{name}' is unknown: expected one of {', '.join(sorted(allowed))}"
            )


def _number(table: Mapping[str, Any], key: str) -> float:
    value = table.get(_leaf(key))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScoreModelError(f"key '{key}' = {value!r}: expected a number")
    return float(value)


def _positive(table: Mapping[str, Any], key: str) -> float:
    value = _number(table, key)
    if value <= 0:
        raise ScoreModelError(f"key '{key}' = {value!r}: expected a number above 0")
    return value


def _fraction(table: Mapping[str, Any], key: str) -> float:
    value = _number(table, key)
    if not 0 <= value <= 1:
        raise ScoreModelError(f"key '{key}' = {value!r}: expected a number from 0 to 1")
    return value


def _signed(table: Mapping[str, Any], key: str, *, negative: bool) -> float:
    value = _number(table, key)
    if (value > 0) if negative else (value < 0):
        expected = "0 or below (experience lost)" if negative else "0 or above (gained)"
        raise ScoreModelError(f"key '{key}' = {value!r}: expected a number {expected}")
    return value


def _count(table: Mapping[str, Any], key: str) -> int:
    value = table.get(_leaf(key))
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ScoreModelError(f"key '{key}' = {value!r}: expected a whole number of at least 2")
    return value


def _slugs(raw: Mapping[str, Any], key: str) -> list[str]:
    value = raw.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and _SLUG.match(v) for v in value):
        raise ScoreModelError(
            f"key '{key}' = {value!r}: expected a list of department slugs like \"sales\""
        )
    return value


def _impacts(table: Mapping[str, Any]) -> dict[str, float]:
    kinds = (*NEGATIVE_SIGNALS, *POSITIVE_SIGNALS)
    _only_keys("impacts", table, kinds)
    impacts = {k: _signed(table, f"impacts.{k}", negative=k in NEGATIVE_SIGNALS) for k in kinds}
    return impacts


def _per_name(
    raw: Mapping[str, Any],
    key: str,
    names: tuple[str, ...] | None,
    unit: float,
    cast: type = float,
) -> dict[str, Any]:
    table = _table(raw, key)
    if names is not None:
        _only_keys(key, table, ("default", *names))
    if "default" not in table:
        raise ScoreModelError(f"key '{key}.default' is missing: expected a number above 0")
    for name in table:
        if name != "default" and not _SLUG.match(name):
            raise ScoreModelError(f"key '{key}.{name}': expected a slug like \"billing\"")
    return {name: cast(_positive(table, f"{key}.{name}") * unit) for name in table}


def _stages(table: Mapping[str, Any]) -> dict[str, str]:
    _only_keys("stages", table, ("default", *EVENT_TYPES))
    stages: dict[str, str] = {}
    for name, value in table.items():
        if not isinstance(value, str) or not _SLUG.match(value):
            raise ScoreModelError(
                f"key 'stages.{name}' = {value!r}: expected a stage slug like \"service\""
            )
        stages[name] = value
    if "default" not in stages:
        raise ScoreModelError("key 'stages.default' is missing: expected a stage slug")
    return stages
