"""Recently seen event_ids, so a re-sent event is counted and stored once.

Bounded twice: at most `max_ids` ids per worker, and an id is forgotten once the
partition's event-time clock is `window_us` past the event. Past that window a re-sent
event is still recognised by its journey's state (the engine ignores an event_id it keeps),
so the window only bounds what a duplicate costs, not whether it is counted twice in
scores. What the window misses: a duplicate of an event whose journey was retired, or one
re-sent keyed to another journey; the touchpoints table still collapses it by event_id.
"""

from __future__ import annotations

from collections import OrderedDict


class RecentEventIds:
    def __init__(self, window_us: int, max_ids: int) -> None:
        if window_us <= 0 or max_ids <= 0:
            raise ValueError(f"window_us={window_us}, max_ids={max_ids}: expected both > 0")
        self.window_us = window_us
        self.max_ids = max_ids
        self._seen: OrderedDict[tuple[int, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, partition: int, event_id: str, at_us: int, clock_us: int) -> bool:
        """True when the id was seen recently on this partition; else remember it."""
        key = (partition, event_id)
        if key in self._seen:
            return True
        self._seen[key] = at_us
        self._evict(clock_us)
        return False

    def _evict(self, clock_us: int) -> None:
        while len(self._seen) > self.max_ids:
            self._seen.popitem(last=False)
        horizon = clock_us - self.window_us
        while self._seen:
            key, at_us = next(iter(self._seen.items()))
            if at_us >= horizon:
                return
            del self._seen[key]
