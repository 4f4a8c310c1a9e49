"""Per-token rate limiting: a token bucket counted in events, not requests.

Events are what load the pipeline: one request of 10,000 events weighs as much as 10,000
requests of one. Pure (the caller passes the clock), so the invariants are tested
exhaustively: over any span of time a token gets at most `burst + rate x span` events
through, and a refused request told to retry after `wait` seconds fits then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` events per second on average, up to `burst` at once."""

    rate: float
    burst: float
    level: float = field(default=math.nan)  # events available; full at first use
    updated: float = field(default=math.nan)  # clock of `level`

    def __post_init__(self) -> None:
        if not self.rate > 0 or not self.burst >= 1:
            raise ValueError(f"rate {self.rate} and burst {self.burst}: expected > 0 and >= 1")

    def take(self, events: int, now: float) -> float:
        """Take `events` if the bucket holds them and return 0; otherwise take nothing and
        return the seconds until it will hold them (inf when it never can: more than
        `burst`). A request is taken whole or refused whole, never split."""
        self._refill(now)
        if events <= self.level:
            self.level -= events
            return 0.0
        if events > self.burst:
            return math.inf
        return (events - self.level) / self.rate

    def _refill(self, now: float) -> None:
        if math.isnan(self.updated):
            self.level, self.updated = self.burst, now
            return
        if now > self.updated:  # a clock that steps back refills nothing
            self.level = min(self.burst, self.level + (now - self.updated) * self.rate)
            self.updated = now


class RateLimiter:
    """One bucket per token (by the grant's index: the token itself is not kept here)."""

    def __init__(self, rate: float, burst: float) -> None:
        TokenBucket(rate, burst)  # the same checks, at construction
        self.rate, self.burst = rate, burst
        self._buckets: dict[int, TokenBucket] = {}

    def take(self, token_index: int, events: int, now: float) -> float:
        bucket = self._buckets.get(token_index)
        if bucket is None:
            bucket = self._buckets[token_index] = TokenBucket(self.rate, self.burst)
        return bucket.take(events, now)


def retry_after(wait: float) -> int:
    """Whole seconds for a Retry-After header: rounded up, at least 1."""
    return max(1, math.ceil(wait)) if math.isfinite(wait) else 1
