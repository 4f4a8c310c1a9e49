"""The event-time clock of each partition and the journeys waiting on it.

A partition's clock is the latest event time it has seen (touchpoints and idle ticks). It
never reads the wall clock itself: replaying last year's traffic moves it through last
year, so deadlines fire exactly where they fired live, never early. The wall clock enters
only through tick messages, which the worker sends to a caught-up, idle partition.

`Wakeups` remembers, per partition, the earliest moment each journey book wants to be
advanced (a deadline, a promise entering the alert horizon). Entries are replaced, not
removed: a popped entry whose time is no longer the key's current one is skipped.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime

NEVER = -(2**62)


def to_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) if moment.tzinfo else _naive(moment)


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _naive(moment: datetime) -> int:
    raise ValueError(f"clock time {moment!r}: expected a timezone-aware datetime")


class PartitionClocks:
    """Event time per partition, in epoch microseconds; only ever moves forward."""

    def __init__(self) -> None:
        self._now: dict[int, int] = {}

    def observe(self, partition: int, at_us: int) -> None:
        if at_us > self._now.get(partition, NEVER):
            self._now[partition] = at_us

    def now(self, partition: int) -> int:
        return self._now.get(partition, NEVER)

    def items(self) -> list[tuple[int, int]]:
        return sorted(self._now.items())


class Wakeups:
    """Per partition, which journey books to advance when the clock passes a moment."""

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._current: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, partition: int, key: str, at_us: int | None) -> None:
        """Wake `key` once the clock is past `at_us` (None: nothing to wait for)."""
        if at_us is None:
            self._current.pop(key, None)
            return
        if self._current.get(key) == at_us:
            return
        self._current[key] = at_us
        heapq.heappush(self._heaps.setdefault(partition, []), (at_us, key))

    def due(self, partition: int, clock_us: int) -> list[str]:
        """Keys whose moment the clock has passed (strictly), each once."""
        heap = self._heaps.get(partition, [])
        keys: list[str] = []
        while heap and heap[0][0] < clock_us:
            at_us, key = heapq.heappop(heap)
            if self._current.get(key) == at_us:
                del self._current[key]
                keys.append(key)
        return keys

    def forget_partition(self, partition: int) -> None:
        for _, key in self._heaps.pop(partition, []):
            self._current.pop(key, None)
