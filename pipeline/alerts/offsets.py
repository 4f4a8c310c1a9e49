"""Which offsets a delivery process may commit while alerts finish out of order. Pure.

Alerts are delivered concurrently and a dead receiver's alerts take minutes of retries, so
they finish out of order. Committing an offset says every message before it is done: it
may only move to the lowest offset still in flight in that partition (or past the last
taken). A crash replays from there; alerts already delivered after it are sent again with
the same idempotency key, which the receiver drops: at least once, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass
class OffsetTracker:
    _pending: dict[TopicPartition, set[int]] = field(default_factory=dict)
    _next: dict[TopicPartition, int] = field(default_factory=dict)  # after the last taken
    _committed: dict[TopicPartition, int] = field(default_factory=dict)

    def taken(self, tp: TopicPartition, offset: int) -> None:
        self._pending.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is not None:
            pending.discard(offset)

    @property
    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets to commit now: per partition, the lowest in flight, else the next one;
        only those that moved since the last call."""
        moved: dict[TopicPartition, int] = {}
        for tp, after in self._next.items():
            pending = self._pending.get(tp)
            offset = min(pending) if pending else after
            if self._committed.get(tp) != offset:
                moved[tp] = offset
        self._committed.update(moved)
        return moved

    def forget(self, tps: set[TopicPartition]) -> None:
        """Partitions this process no longer owns: their in-flight alerts may finish, but
        only the new owner commits them."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
