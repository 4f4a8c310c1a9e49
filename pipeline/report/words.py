"""The words a reader sees for the engine's signal codes (`promise_broken` and so on)."""

from __future__ import annotations

SIGNAL_WORDS = {
    "repeat_contact": "customers had to explain again",
    "context_lost": "context lost at a handoff",
    "long_wait": "long waits",
    "promise_broken": "broken promises",
    "promise_kept_late": "promises kept late",
    "promise_kept": "promises kept",
    "feedback_unanswered": "unanswered feedback",
    "rework": "rework and corrections",
    "slow_resolution": "slow resolutions",
    "first_contact_resolution": "solved at the first contact",
    "proactive_update": "told before they asked",
    "fast_fix": "fast fixes",
}


def signal_words(code: str) -> str:
    """Words for a signal code; an unknown code (a newer model's) still reads as words."""
    return SIGNAL_WORDS.get(code, code.replace("_", " "))
