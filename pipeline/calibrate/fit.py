"""Fit the signals' impacts to survey answers: a ridge regression, pure and deterministic.

The model (docs/score-model.md#fitting-impacts-to-surveys-journeys-calibrate):

    survey_score(journey) = intercept + sum over signals k of impact_k x count_k(journey) + e

`survey_score` is the engine's 0-100 mapping of the journey's answers, `count_k` how often
signal k occurred in it (for `long_wait`, thresholds exceeded, so its impact is the model's
`impact_per_threshold`). An impact is then "points of the 0-100 survey per occurrence", the
unit of the score model's impacts, which are points of the 0-100 operational score.

Ridge shrinks each impact towards the *current* model's value, not towards zero: where the
answers say little, the proposal stays where the analysts put it. Signals seen in fewer than
`min_per_signal` surveyed journeys are not fitted at all; they keep their current impact and
enter the fit as a fixed offset. Intervals come from the heteroskedasticity-robust sandwich
covariance (HC1) of the ridge estimate: survey answers are bounded and lumpy, so their noise
is anything but constant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.calibrate.exceptions import CalibrationError

# A normal 97.5% quantile: the intervals are 95%, two-sided.
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class SurveyedJourney:
    """One journey with a survey answer: its 0-100 survey score and its signal counts."""

    survey_score: float
    counts: Mapping[str, float]


@dataclass(frozen=True)
class FitSettings:
    """How much to trust the answers: the ridge weight and the minimum evidence."""

    ridge: float = 5.0
    min_journeys: int = 30
    min_per_signal: int = 10

    def __post_init__(self) -> None:
        if not self.ridge >= 0:
            raise CalibrationError(f"ridge = {self.ridge!r}: expected a number 0 or above")
        if self.min_journeys < 2:
            raise CalibrationError(f"min_journeys = {self.min_journeys!r}: expected at least 2")
        if self.min_per_signal < 1:
            raise CalibrationError(f"min_per_signal = {self.min_per_signal!r}: expected at least 1")


@dataclass(frozen=True)
class FittedImpact:
    """One signal's current and fitted impact. `fitted` is None when it was not fitted
    (too few journeys); `low`/`high` bound the 95% interval of `fitted`."""

    signal: str
    current: float
    fitted: float | None
    low: float | None
    high: float | None
    journeys: int

    @property
    def was_fitted(self) -> bool:
        return self.fitted is not None


@dataclass(frozen=True)
class Calibration:
    """The fit: per-signal impacts, its quality, and how the current model fares."""

    impacts: tuple[FittedImpact, ...]
    intercept: float
    r_squared: float
    r_squared_current: float
    journeys: int
    settings: FitSettings

    def fitted(self) -> dict[str, float]:
        """Signal -> fitted impact, for the signals that were fitted."""
        return {i.signal: i.fitted for i in self.impacts if i.fitted is not None}


def fit_impacts(
    journeys: Sequence[SurveyedJourney],
    current: Mapping[str, float],
    settings: FitSettings | None = None,
) -> Calibration:
    """Fit `current`'s signals to the journeys' survey scores; raise CalibrationError with
    what is missing when there are too few answers to say anything."""
    settings = settings or FitSettings()
    kinds = list(current)
    _check_inputs(journeys, kinds)
    n = len(journeys)
    if n < settings.min_journeys:
        raise CalibrationError(
            f"{n} journeys with a survey answer: at least {settings.min_journeys} are needed to "
            "fit impacts (--min-journeys); collect more answers or widen the period"
        )
    y = np.array([j.survey_score for j in journeys], dtype=float)
    x = np.array([[float(j.counts.get(k, 0.0)) for k in kinds] for j in journeys], dtype=float)
    support = (x > 0).sum(axis=0)
    fit_mask = support >= settings.min_per_signal
    if not fit_mask.any():
        best = max(zip(support, kinds, strict=True))
        raise CalibrationError(
            f"no signal occurs in at least {settings.min_per_signal} of the {n} surveyed "
            f"journeys (--min-per-signal); the most seen is {best[1]} in {best[0]}"
        )
    prior = np.array([current[k] for k in kinds], dtype=float)
    beta, intercept, covariance = _ridge_towards(x, y, prior, fit_mask, settings.ridge)
    return Calibration(
        impacts=_impacts(kinds, prior, beta, covariance, fit_mask, support),
        intercept=float(intercept),
        r_squared=_r_squared(y, intercept + x @ beta),
        r_squared_current=_r_squared(y, float(np.mean(y - x @ prior)) + x @ prior),
        journeys=n,
        settings=settings,
    )


def _check_inputs(journeys: Sequence[SurveyedJourney], kinds: list[str]) -> None:
    known = set(kinds)
    for journey in journeys:
        if not np.isfinite(journey.survey_score):
            raise CalibrationError(f"survey score {journey.survey_score!r}: expected a number")
        for kind, count in journey.counts.items():
            if kind not in known:
                raise CalibrationError(
                    f"signal {kind!r} has no impact in the model: expected one of "
                    + ", ".join(kinds)
                )
            if not (np.isfinite(count) and count >= 0):
                raise CalibrationError(f"count of {kind} = {count!r}: expected 0 or more")


def _ridge_towards(
    x: np.ndarray, y: np.ndarray, prior: np.ndarray, fit_mask: np.ndarray, ridge: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """Minimise |y - a - X b|^2 + ridge |b_F - prior_F|^2 over the intercept a and the fitted
    coefficients b_F; the others stay at their prior. Returns b, a and Cov(b_F)."""
    held = x[:, ~fit_mask] @ prior[~fit_mask]
    fitted_x = x[:, fit_mask]
    # Solve for the departure from the prior: ridge towards zero on the rest of the answer.
    rest = y - held - fitted_x @ prior[fit_mask]
    centred_x = fitted_x - fitted_x.mean(axis=0)
    centred_rest = rest - rest.mean()
    gram = centred_x.T @ centred_x + ridge * np.eye(centred_x.shape[1])
    try:
        inverse = np.linalg.inv(gram)
        if not np.all(np.isfinite(inverse)) or np.linalg.cond(gram) > 1e12:
            raise np.linalg.LinAlgError("ill-conditioned")
    except np.linalg.LinAlgError:
        raise CalibrationError(
            "the signal counts do not separate the signals (they always occur together): "
            "raise --ridge above 0"
        ) from None
    departure = inverse @ centred_x.T @ centred_rest
    beta = prior.copy()
    beta[fit_mask] += departure
    intercept = float(np.mean(y - x @ beta))
    residual = y - intercept - x @ beta
    n, p = centred_x.shape
    # HC1: the sandwich with the small-sample factor n / (n - p - 1) (p slopes + intercept).
    scale = n / max(n - p - 1, 1)
    meat = (centred_x * (residual**2)[:, None]).T @ centred_x
    covariance = scale * inverse @ meat @ inverse
    return beta, intercept, covariance


def _impacts(
    kinds: list[str],
    prior: np.ndarray,
    beta: np.ndarray,
    covariance: np.ndarray,
    fit_mask: np.ndarray,
    support: np.ndarray,
) -> tuple[FittedImpact, ...]:
    spread = iter(Z_95 * np.sqrt(np.clip(np.diag(covariance), 0.0, None)))
    impacts = []
    for index, kind in enumerate(kinds):
        current, journeys = float(prior[index]), int(support[index])
        if not fit_mask[index]:
            impacts.append(FittedImpact(kind, current, None, None, None, journeys))
            continue
        value, half = float(beta[index]), float(next(spread))
        impacts.append(FittedImpact(kind, current, value, value - half, value + half, journeys))
    return tuple(impacts)


def _r_squared(y: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return 1.0 if np.allclose(y, predicted) else 0.0
    return 1.0 - float(np.sum((y - predicted) ** 2)) / total
