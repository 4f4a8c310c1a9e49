"""The compact de-dup memory answers exactly as the ordered dict it replaced, in less room."""

from __future__ import annotations

import tracemalloc
from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stream.dedup import RecentEventIds


class OrderedDictEventIds:
    """The first RecentEventIds, kept as the model the compact one must agree with."""

    def __init__(self, window_us: int, max_ids: int) -> None:
        self.window_us, self.max_ids = window_us, max_ids
        self._seen: OrderedDict[tuple[int, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, partition: int, event_id: str, at_us: int, clock_us: int) -> bool:
        key = (partition, event_id)
        if key in self._seen:
            return True
        self._seen[key] = at_us
        while len(self._seen) > self.max_ids:
            self._seen.popitem(last=False)
        horizon = clock_us - self.window_us
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if at >= horizon:
                break
            del self._seen[key]
        return False


calls = st.lists(
    st.tuples(
        st.integers(0, 3),  # partition
        st.sampled_from([f"e{n}" for n in range(12)]),  # event_id: few, so repeats happen
        st.integers(-5, 40),  # event time: a small range, so edges of the window are hit
        st.integers(-5, 40),  # the partition's clock (events may be late or early)
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(
    window_us=st.integers(1, 20),
    max_ids=st.integers(1, 15),
    compact_after=st.integers(1, 8),
    calls=calls,
)
def test_compact_event_ids_answer_exactly_as_the_ordered_dict_did(
    window_us: int, max_ids: int, compact_after: int, calls: list[tuple[int, str, int, int]]
) -> None:
    compact, model = RecentEventIds(window_us, max_ids), OrderedDictEventIds(window_us, max_ids)
    compact.compact_after = compact_after  # shift the columns often, not only past 4096
    for partition, event_id, at_us, clock_us in calls:
        assert compact.seen(partition, event_id, at_us, clock_us) == model.seen(
            partition, event_id, at_us, clock_us
        )
        assert len(compact) == len(model)


def test_a_long_run_keeps_the_bound_and_forgets_by_time_after_the_columns_shift() -> None:
    ids = RecentEventIds(window_us=1_000, max_ids=5_000)
    for n in range(20_000):  # several shifts of the columns (past 4096 forgotten slots)
        assert not ids.seen(n % 4, f"e{n}", at_us=n, clock_us=n)
        assert len(ids) == min(n + 1, 1_001)
    assert ids.seen(19_999 % 4, "e19999", at_us=0, clock_us=19_999)
    assert not ids.seen(0, "e0", at_us=19_999, clock_us=19_999)  # forgotten long ago


def test_event_ids_cost_well_under_what_the_ordered_dict_took() -> None:
    count = 60_000
    names = [f"CASE-{n // 4:010d}-{n % 4:04d}" for n in range(count)]  # made before counting
    tracemalloc.start()
    try:
        ids = RecentEventIds(window_us=10**12, max_ids=count)
        for n, name in enumerate(names):
            ids.seen(n % 4, name, at_us=1_700_000_000_000_000 + n, clock_us=1_700_000_000_000_000)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ids) == count
    assert held / count < 100  # columns and sets: ~60 B an id here, the ordered dict ~180
