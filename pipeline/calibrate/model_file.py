"""A proposed score model: the live model's TOML with the fitted impacts and a new version.

The file is the live one edited line by line, not regenerated, so its comments, thresholds,
windows and stages stay exactly as they were and a `diff` of the two files shows only what
the fit changed. The result is checked with the model's own loader before it is returned.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import datetime

from pipeline.calibrate.exceptions import CalibrationError
from pipeline.calibrate.fit import Calibration
from pipeline.journey import ScoreModel, parse_score_model
from pipeline.journey.model import NEGATIVE_SIGNALS

_HEADER = re.compile(r"^\s*\[([A-Za-z0-9_.]+)\]\s*(#.*)?$")
_ASSIGNMENT = re.compile(r"^(\s*)([A-Za-z0-9_]+)(\s*=\s*)([^#]*?)(\s*#.*)?$")
_CALIBRATED_SUFFIX = re.compile(r"-cal\d{12}$")
# Impacts are written to one decimal: the intervals are several points wide, so more digits
# would claim a precision the answers do not have.
DECIMALS = 1


def proposed_version(current: str, now: datetime) -> str:
    """`v1` -> `v1-cal202612031544`; a proposal from a proposal keeps one suffix."""
    return f"{_CALIBRATED_SUFFIX.sub('', current)[:47]}-cal{now:%Y%m%d%H%M}"


def proposed_impacts(calibration: Calibration, model: ScoreModel) -> dict[str, float]:
    """Model key -> value to write: fitted impacts with the sign the model allows (an impact
    fitted on the wrong side of zero is written as 0), `long_wait` as its per-threshold step
    and its cap scaled with it. Signals that were not fitted are left out (kept as they are)."""
    values: dict[str, float] = {}
    for kind, fitted in calibration.fitted().items():
        negative = kind in NEGATIVE_SIGNALS or kind == "long_wait"
        value = round(min(fitted, 0.0) if negative else max(fitted, 0.0), DECIMALS) + 0.0
        if kind == "long_wait":
            steps = model.long_wait_max / model.long_wait_step if model.long_wait_step else 4.0
            values["long_wait.impact_per_threshold"] = value
            values["long_wait.max_impact"] = round(value * steps, DECIMALS) + 0.0
        else:
            values[f"impacts.{kind}"] = value
    return values


def write_model_text(source: str, version: str, values: Mapping[str, float], note: str) -> str:
    """`source` (a score model TOML) with `version` and the dotted keys of `values` replaced,
    and `note` as a comment on top; raises CalibrationError when the result does not load."""
    lines = [f"# {line}".rstrip() for line in note.splitlines()]
    table, seen = "", set()
    for line in source.splitlines():
        header = _HEADER.match(line)
        if header:
            table = header.group(1)
        assignment = _ASSIGNMENT.match(line)
        if assignment and not header:
            indent, key, equals, _, comment = assignment.groups()
            dotted = f"{table}.{key}" if table else key
            if dotted == "version":
                line = f'{indent}{key}{equals}"{version}"{comment or ""}'
                seen.add(dotted)
            elif dotted in values:
                line = f"{indent}{key}{equals}{values[dotted]:g}{comment or ''}"
                seen.add(dotted)
        lines.append(line)
    missing = sorted({*values, "version"} - seen)
    if missing:
        raise CalibrationError(
            f"the model file has no line for {', '.join(missing)}: write the keys as "
            "`key = value` lines under their [table], as score_model_v1.toml does"
        )
    text = "\n".join(lines) + "\n"
    parse_score_model(tomllib.loads(text))
    return text
