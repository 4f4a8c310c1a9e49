"""Recently seen event_ids, so a re-sent event is counted and stored once.

Bounded twice: at most `max_ids` ids per worker, and an id is forgotten once the
partition's event-time clock is `window_us` past the event. Past that window a re-sent
event is still recognised by its journey's state (the engine ignores an event_id it keeps),
so the window only bounds what a duplicate costs, not whether it is counted twice in
scores. What the window misses: a duplicate of an event whose journey was retired, or one
re-sent keyed to another journey; the touchpoints table still collapses it by event_id.

Ids are forgotten oldest-remembered first. The worker holds up to a million of them, so
they are kept compactly: a set of ids per partition, and the order they were remembered
in as three columns (id, partition, moment) with a moving head. That is about 150 bytes
an id with the id string itself, where an ordered dict of (partition, id) tuples took 340.
"""

from __future__ import annotations

from array import array


class RecentEventIds:
    compact_after = 4096  # forgotten slots at the head before the columns are shifted

    def __init__(self, window_us: int, max_ids: int) -> None:
        if window_us <= 0 or max_ids <= 0:
            raise ValueError(f"window_us={window_us}, max_ids={max_ids}: expected both > 0")
        self.window_us = window_us
        self.max_ids = max_ids
        self._ids: dict[int, set[str]] = {}  # partition -> ids remembered
        # Remembered ids, oldest first from `_head`; slots before it are forgotten.
        self._order_ids: list[str] = []
        self._order_partitions = array("q")
        self._order_at_us = array("q")  # event times in epoch microseconds (int64)
        self._head = 0

    def __len__(self) -> int:
        return len(self._order_ids) - self._head

    def clear(self) -> None:
        """Forget every id, as a restarted worker starts (books still know their events)."""
        self._ids.clear()
        self._order_ids.clear()
        del self._order_partitions[:], self._order_at_us[:]
        self._head = 0

    def forget(self, event_ids: set[str]) -> None:
        """Forget these ids (an erased customer's): no trace of them stays in memory. A scan
        of every remembered id, which an erasure, rare, can afford."""
        if not event_ids:
            return
        for ids in self._ids.values():
            ids.difference_update(event_ids)
        order_ids = self._order_ids
        for slot in range(self._head, len(order_ids)):
            if order_ids[slot] in event_ids:
                order_ids[slot] = ""  # its eviction then discards "" (never an event id)

    def seen(self, partition: int, event_id: str, at_us: int, clock_us: int) -> bool:
        """True when the id was seen recently on this partition; else remember it."""
        ids = self._ids.get(partition)
        if ids is None:
            ids = self._ids[partition] = set()
        elif event_id in ids:
            return True
        ids.add(event_id)
        self._order_ids.append(event_id)
        self._order_partitions.append(partition)
        self._order_at_us.append(at_us)
        self._evict(clock_us)
        return False

    def _evict(self, clock_us: int) -> None:
        """Forget the oldest ids past `max_ids`, then the oldest ones older than the window."""
        order_ids, at_us, head = self._order_ids, self._order_at_us, self._head
        end = len(order_ids)
        over = end - head - self.max_ids
        horizon = clock_us - self.window_us
        while head < end and (over > 0 or at_us[head] < horizon):
            self._ids[self._order_partitions[head]].discard(order_ids[head])
            order_ids[head] = ""  # release the id string now, not at the next shift
            head += 1
            over -= 1
        if head >= self.compact_after and 2 * head >= end:
            del order_ids[:head], self._order_partitions[:head], at_us[:head]
            head = 0
        self._head = head
