"""The event-time clock of each partition and the journeys waiting on it.

A partition's clock is the latest event time it has seen (touchpoints and idle ticks). It
never reads the wall clock itself: replaying last year's traffic moves it through last
year, so deadlines fire exactly where they fired live, never early. The wall clock enters
only through tick messages, which the worker sends to a caught-up, idle partition.

`Wakeups` remembers, per partition, the earliest moment each journey book wants to be
advanced (a deadline, a promise entering the alert horizon).
"""

from __future__ import annotations

import heapq

from pipeline.journey.events import NEVER


class PartitionClocks:
    """Event time per partition, in epoch microseconds; only ever moves forward."""

    def __init__(self) -> None:
        self._now: dict[int, int] = {}

    def observe(self, partition: int, at_us: int) -> None:
        if at_us > self._now.get(partition, NEVER):
            self._now[partition] = at_us

    def now(self, partition: int) -> int:
        return self._now.get(partition, NEVER)

    def clear(self) -> None:
        self._now.clear()


_EMPTIED: set[str] = set()  # stands for a bucket emptied before its time; never filled


class Wakeups:
    """Per partition, which journey books to advance when the clock passes a moment.

    Each key is filed once, under its current moment, in a bucket of moments 2**28 us
    (4.5 minutes) wide, and a heap orders each partition's buckets. Re-scheduling moves
    the key to its new bucket, so a journey costs one entry however often its deadline
    moves (~170 bytes of RSS with its key and moment). A heap of (moment, key) entries kept
    every superseded one until its moment passed: four per open service case, ~590 bytes.
    The price: a bucket the clock is inside is scanned whole by each `due`, and a bucket
    emptied early keeps its place (a dict slot) until its time. A key belongs to one
    partition, as the worker routes it.
    """

    BUCKET_BITS = 28

    def __init__(self) -> None:
        self._current: dict[str, int] = {}  # key -> its moment
        self._buckets: dict[int, dict[int, set[str]]] = {}  # partition -> bucket -> keys
        self._heaps: dict[int, list[int]] = {}  # partition -> its buckets, earliest first

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, partition: int, key: str, at_us: int | None) -> None:
        """Wake `key` once the clock is past `at_us` (None: nothing to wait for)."""
        current = self._current
        before = current.get(key)
        if before == at_us:
            return
        buckets = self._buckets.get(partition)
        if buckets is None:
            buckets = self._buckets[partition] = {}
        if before is not None:
            bucket = before >> self.BUCKET_BITS
            filed = buckets.get(bucket)
            if filed:
                filed.discard(key)
                if not filed:  # keep the bucket's place in the heap, not its emptied table
                    buckets[bucket] = _EMPTIED
            del current[key]  # the caller's key object replaces the one kept
        if at_us is None:
            return
        current[key] = at_us
        bucket = at_us >> self.BUCKET_BITS
        filed = buckets.get(bucket)
        if filed is None or filed is _EMPTIED:
            if filed is None:  # an emptied bucket is still in the heap: once is enough
                heapq.heappush(self._heaps.setdefault(partition, []), bucket)
            filed = buckets[bucket] = set()
        filed.add(key)

    def due(self, partition: int, clock_us: int) -> list[str]:
        """Keys whose moment the clock has passed (strictly), each once, earliest first."""
        heap = self._heaps.get(partition)
        if not heap:
            return []
        buckets, current, bits = self._buckets[partition], self._current, self.BUCKET_BITS
        found: list[tuple[int, str]] = []
        while heap and heap[0] << bits < clock_us:
            bucket = heap[0]
            filed = buckets[bucket]
            whole = (bucket + 1) << bits <= clock_us  # every moment of the bucket passed
            for key in list(filed) if not whole else filed:
                at_us = current.get(key)
                if at_us is not None and at_us >> bits == bucket and at_us < clock_us:
                    found.append((at_us, key))
                    del current[key]
                    if not whole:
                        filed.discard(key)
            if not whole and filed:
                break
            heapq.heappop(heap)
            del buckets[bucket]
        found.sort()
        return [key for _, key in found]

    def clear(self) -> None:
        self._current.clear()
        self._buckets.clear()
        self._heaps.clear()

    def forget_partition(self, partition: int) -> None:
        self._heaps.pop(partition, None)
        for filed in self._buckets.pop(partition, {}).values():
            for key in filed:
                self._current.pop(key, None)
