"""When to try a delivery again, and which answers are worth another try. Pure.

Waits double from `base` up to `cap`, each drawn from its upper half ("equal jitter"):
alerts that failed together (a receiver restarting) do not all come back in the same
second, and no wait is shorter than half of its step, so a receiver gets the breathing
room the schedule promises.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # the receiver may accept it later
    REFUSED = "refused"  # the request itself is refused: another attempt would be too


# 408 Request Timeout, 425 Too Early, 429 Too Many Requests: the receiver asks to come back.
_RETRYABLE_4XX = frozenset({408, 425, 429})


def verdict(status: int) -> Verdict:
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in _RETRYABLE_4XX:
        return Verdict.RETRY
    return Verdict.REFUSED  # other 4xx; 3xx too: redirects are not followed with a body


@dataclass(frozen=True)
class RetrySchedule:
    attempts: int
    base: float
    cap: float

    def step(self, failed_attempt: int) -> float:
        """The wait's upper bound after attempt number `failed_attempt` (1-based)."""
        return float(min(self.cap, self.base * 2.0 ** (failed_attempt - 1)))

    def wait(
        self,
        failed_attempt: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait after attempt `failed_attempt`; a receiver's `Retry-After` is
        honoured up to `cap`."""
        step = self.step(failed_attempt)
        drawn = step / 2 + (rng or random).random() * step / 2
        if retry_after is not None and retry_after > 0:
            drawn = max(drawn, min(retry_after, self.cap))
        return drawn

    def last(self, attempt: int) -> bool:
        return attempt >= self.attempts


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header in seconds (the HTTP-date form is ignored: clocks differ)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
