"""Sending at a pace: a fixed rate (events/s), simulated time at a speed-up, or flat out.

The clock and sleep are injected so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Pacer:
    """`wait_for(n, sent_at)` sleeps until message n (sent at simulated time `sent_at`) is due.

    rate: at most this many messages per wall second. speed: simulated seconds per wall
    second (3600 = an hour of company time per second). Both None: as fast as possible.
    """

    rate: float | None = None
    speed: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _started: float | None = field(default=None, init=False)
    _first: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        for name in ("rate", "speed"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}: expected a positive number, got {value!r}")

    def due(self, index: int, sent_at: datetime) -> float:
        """Wall seconds after the start when message `index` may go."""
        if self._first is None:
            self._first = sent_at
        by_rate = index / self.rate if self.rate else 0.0
        by_speed = (sent_at - self._first).total_seconds() / self.speed if self.speed else 0.0
        return max(by_rate, by_speed)

    def wait_for(self, index: int, sent_at: datetime) -> None:
        if self._started is None:
            self._started = self.clock()
        delay = self._started + self.due(index, sent_at) - self.clock()
        if delay > 0:
            self.sleep(delay)
