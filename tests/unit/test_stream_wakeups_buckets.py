"""Wake-ups filed in buckets answer exactly as the heap of (moment, key) entries did."""

from __future__ import annotations

import heapq
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stream.clock import Wakeups


class HeapWakeups:
    """The first Wakeups, kept as the model: superseded entries stay until popped."""

    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._current: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, partition: int, key: str, at_us: int | None) -> None:
        if at_us is None:
            self._current.pop(key, None)
            return
        if self._current.get(key) == at_us:
            return
        self._current[key] = at_us
        heapq.heappush(self._heaps.setdefault(partition, []), (at_us, key))

    def due(self, partition: int, clock_us: int) -> list[str]:
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


KEYS = [f"k{n}" for n in range(10)]


def partition_of(key: str) -> int:  # a key belongs to one partition, as the worker routes it
    return int(key[1:]) % 3


operations = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), st.sampled_from(KEYS), st.none() | st.integers(-5, 30)),
        st.tuples(st.just("due"), st.integers(0, 2), st.integers(-5, 35)),
        st.tuples(st.just("forget"), st.integers(0, 2), st.none()),
    ),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(bits=st.integers(0, 6), operations=operations)
def test_bucketed_wakeups_answer_exactly_as_the_heap_did(
    bits: int, operations: list[tuple[str, object, int | None]]
) -> None:
    wakeups, model = Wakeups(), HeapWakeups()
    wakeups.BUCKET_BITS = bits  # narrow buckets, so moments share and straddle them
    for name, subject, value in operations:
        if name == "schedule":
            assert isinstance(subject, str)
            wakeups.schedule(partition_of(subject), subject, value)
            model.schedule(partition_of(subject), subject, value)
        elif name == "due":
            assert isinstance(subject, int) and value is not None
            assert wakeups.due(subject, value) == model.due(subject, value)
        else:
            assert isinstance(subject, int)
            wakeups.forget_partition(subject)
            model.forget_partition(subject)
        assert len(wakeups) == len(model)
    for partition in range(3):  # nothing got lost: every key still waiting fires in the end
        assert wakeups.due(partition, 10**6) == model.due(partition, 10**6)
    assert len(wakeups) == len(model) == 0


def test_every_moment_and_clock_around_bucket_edges() -> None:
    for bits in range(4):
        for moment in range(-3, 17):
            for clock in range(-3, 18):
                wakeups, model = Wakeups(), HeapWakeups()
                wakeups.BUCKET_BITS = bits
                for w in (wakeups, model):
                    w.schedule(0, "a", moment)
                    w.schedule(0, "b", moment + 1)
                assert wakeups.due(0, clock) == model.due(0, clock), (bits, moment, clock)
                assert wakeups.due(0, 100) == model.due(0, 100), (bits, moment, clock)


def test_real_moments_with_the_default_buckets() -> None:
    wakeups = Wakeups()
    day = 86_400_000_000
    t0 = 1_772_352_000_000_000  # 2026-03-01 in epoch microseconds
    wakeups.schedule(0, "a", t0 + 14 * day)
    wakeups.schedule(0, "a", t0 + 2 * day)  # moved earlier
    wakeups.schedule(0, "b", t0 + 2 * day + 1)  # same bucket as a
    wakeups.schedule(0, "c", t0 + 2 * day - 10**9)
    assert wakeups.due(0, t0 + 2 * day) == ["c"]
    assert wakeups.due(0, t0 + 2 * day + 2) == ["a", "b"]
    assert wakeups.due(0, t0 + 15 * day) == []
    assert len(wakeups) == 0


def test_a_journey_whose_deadline_moves_is_held_once() -> None:
    count = 20_000
    keys = [f"CASE-{n:010d}" for n in range(count)]  # made before counting
    t0 = 1_772_352_000_000_000
    tracemalloc.start()
    try:
        wakeups = Wakeups()
        for step in range(4):  # four events, each moving the deadline (as an open case does)
            for n, key in enumerate(keys):  # a second apart: 1M journeys over twelve days
                wakeups.schedule(n % 4, key, t0 + n * 1_000_000 + (4 - step) * 86_400_000_000)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(wakeups) == count
    assert held / count < 160  # one entry a key; the heap kept four (~420 B)
