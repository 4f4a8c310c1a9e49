"""How simulated customers answer surveys: the planted truth `journeys calibrate` must find.

A surveyed customer's satisfaction (0-100) is `SATISFIED_WITHOUT_SIGNALS` plus, for every
signal the journey holds, its `SURVEY_TRUTH` points (for `long_wait`, per threshold
exceeded), plus Gaussian noise of `ANSWER_NOISE` points; the answers are that satisfaction
on the CSAT (1-5) and NPS (0-10) scales, rounded and bounded. The signals are the ones the
score engine (model v1) finds in the journey's events by the end of the period, the same
that the pipeline stores: customers answer as if they had lived the whole journey, also a
deadline that passes after they answered (a feedback left unanswered), so that every signal
has a truth to find.

The truth differs from model v1 on purpose (customers mind having to explain again and a
broken promise more than v1 says, a late promise less): a fit that only echoed the live model
would fail the test that holds it (tests/integration/test_calibrate.py).
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import orjson

from pipeline.contract import Rejection, validate
from pipeline.journey import JourneyBook, ScoreModel, add, advance

# signal -> points of satisfaction a customer loses (-) or gains (+) per occurrence; v1 in
# the comment. Distinct values, so the rank order a fit must recover is well defined.
SURVEY_TRUTH: dict[str, float] = {
    "promise_broken": -26.0,  # v1 -15
    "repeat_contact": -13.0,  # v1 -8
    "rework": -8.0,  # v1 -10
    "context_lost": -7.0,  # v1 -6
    "feedback_unanswered": -6.0,  # v1 -10
    "promise_kept_late": -5.0,  # v1 -5
    "slow_resolution": -4.0,  # v1 -5
    "long_wait": -2.5,  # per threshold exceeded; v1 -2
    "promise_kept": 1.0,  # v1 +2
    "fast_fix": 2.0,  # v1 +3
    "proactive_update": 5.0,  # v1 +4
    "first_contact_resolution": 9.0,  # v1 +3
}
SATISFIED_WITHOUT_SIGNALS = 65.0
ANSWER_NOISE = 8.0


def signal_counts(
    events: list[dict[str, object]], until: datetime, model: ScoreModel
) -> Counter[str]:
    """Signal -> occurrences (long_wait: thresholds exceeded) the engine finds in one
    journey's events, its clock advanced to `until`."""
    book: JourneyBook | None = None
    for event in events:
        touchpoint = validate(orjson.dumps(event), now=until)
        if isinstance(touchpoint, Rejection):
            continue
        book = book or JourneyBook.for_touchpoint(touchpoint)
        add(book, touchpoint, model)
    counts: Counter[str] = Counter()
    if book is None:
        return counts
    advance(book, until, model)
    step = model.long_wait_step
    for score in book.scores(model):
        for signal in score.signals:
            thresholds = signal.signal == "long_wait" and step
            counts[signal.signal] += round(signal.impact / step) if thresholds else 1
    return counts


def answers(counts: Counter[str], rng: random.Random) -> tuple[int, int]:
    """(csat, nps) of a customer whose journey held `counts`."""
    feeling = SATISFIED_WITHOUT_SIGNALS + sum(SURVEY_TRUTH[k] * n for k, n in counts.items())
    feeling = min(100.0, max(0.0, feeling + rng.gauss(0.0, ANSWER_NOISE)))
    return round(1 + feeling / 25), round(feeling / 10)


def skip_former_answer_draws(rng: random.Random, happy: bool) -> None:
    """Draw from the customer's random source what the answers took before they followed
    SURVEY_TRUTH, and drop it: every later event of the customer (its id, its time, the
    customer's later journeys) stays as it was, and so do the counts docs/demo.md quotes."""
    rng.choice((4, 5, 5) if happy else (1, 2, 2, 3))
    rng.choice((8, 9, 10) if happy else (0, 2, 4, 6))
