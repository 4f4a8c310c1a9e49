"""Aggregates over scores: the word-of-mouth balance and per-department attribution."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.journey.types import JourneyScore

GOOD_STORIES = 3  # people told of a good experience (rule of thumb: docs/concepts.md)
BAD_STORIES = 18  # people told about a bad one


def word_of_mouth(good: int, poor: int) -> int:
    """Net stories told for a period: 3 x good journeys - 18 x poor journeys."""
    if good < 0 or poor < 0:
        raise ValueError(f"good={good!r}, poor={poor!r}: expected counts of 0 or more")
    return GOOD_STORIES * good - BAD_STORIES * poor


def word_of_mouth_of(scores: Iterable[JourneyScore]) -> int:
    """The balance over a set of journey scores (one per journey)."""
    bands = [s.band for s in scores]
    return word_of_mouth(bands.count("good"), bands.count("poor"))


def department_points(score: JourneyScore) -> dict[str, tuple[float, float]]:
    """(lost, gained) points per department, both as positive magnitudes.

    Summed over departments, gained - lost is the operational score's distance from 100
    before clamping: every point is attributed.
    """
    points: dict[str, tuple[float, float]] = {}
    for s in score.signals:
        lost, gained = points.get(s.department, (0.0, 0.0))
        if s.impact < 0:
            lost -= s.impact
        else:
            gained += s.impact
        points[s.department] = (lost, gained)
    return points
