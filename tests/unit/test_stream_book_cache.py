"""The book cache between the state table and the engine: never stale, bounded, few reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import Touchpoint
from pipeline.journey import JourneyBook, add, load_score_model
from pipeline.stream.book_cache import BookCache

MODEL = load_score_model()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def touchpoint(key: str, n: int) -> Touchpoint:
    return Touchpoint(
        event_id=f"{key}-{n}", occurred_at=T0 + timedelta(minutes=n), customer_id="c1",
        department="customer_service", type="contact", journey_id=key, channel="phone",
    )  # fmt: skip


class Table(dict[str, bytes]):
    """The state table: counts reads, so a test sees when the cache went to it."""

    reads = 0

    def read(self, key: str) -> bytes | None:
        self.reads += 1
        return self.get(key)


def change(cache: BookCache, key: str, n: int, partition: int = 0) -> None:
    """What the processor does for an event: get or create the book, add, mark it touched."""
    tp = touchpoint(key, n)
    add(cache.get_or_create(tp), tp, MODEL)
    cache.touched(partition, key)


def flush(cache: BookCache, table: Table, partitions: tuple[int, ...] = (0,)) -> None:
    """What a flush does: encode dirty books, write them to the table, mark them clean."""
    generation, encoded = cache.snapshot(partitions)
    for partition in partitions:
        table.update(encoded[partition])
        cache.persisted(partition, generation)
    cache.evict_clean()


def test_a_written_book_stays_decoded_and_is_not_read_again() -> None:
    table = Table()
    cache = BookCache(table.read, keep=10)
    change(cache, "j1", 1)
    flush(cache, table)
    reads = table.reads
    change(cache, "j1", 2)
    assert table.reads == reads  # served decoded from the cache
    flush(cache, table)
    assert len(JourneyBook.from_bytes(table["j1"]).event_ids()) == 2


def test_clean_books_are_bounded_least_recently_used_first_and_dirty_ones_kept() -> None:
    table = Table()
    cache = BookCache(table.read, keep=3)
    for n, key in enumerate(["a", "b", "c", "d", "e"]):
        change(cache, key, n)
    flush(cache, table)
    assert cache.clean_keys() == ["c", "d", "e"]  # a and b were the least recent
    assert cache.get("c") is not None  # c is now the most recently used
    change(cache, "f", 8)
    flush(cache, table)
    assert cache.clean_keys() == ["e", "c", "f"]  # d went: the least recently used
    change(cache, "g", 9)  # dirty: never evicted, whatever the bound
    cache.evict_clean()
    assert cache.clean_keys() == ["e", "c", "f"] and len(cache) == 4
    cache.evict_clean(keep=0)  # a partition moved away: drop every clean book
    assert cache.clean_keys() == [] and len(cache) == 1
    reads = table.reads
    assert cache.get("a") is not None and table.reads == reads + 1  # read back from the table


def test_a_book_changed_during_a_flush_stays_dirty() -> None:
    table = Table()
    cache = BookCache(table.read, keep=0)
    change(cache, "j1", 1)
    generation, encoded = cache.snapshot([0])
    change(cache, "j1", 2)  # the next batch, while the flush writes
    table.update(encoded[0])
    cache.persisted(0, generation)
    cache.evict_clean()
    assert "j1" not in cache.clean_keys() and len(cache) == 1
    flush(cache, table)
    assert len(JourneyBook.from_bytes(table["j1"]).event_ids()) == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.tuples(st.just("event"), st.integers(0, 7)), st.just(("flush", 0))),
        max_size=60,
    ),
    st.integers(0, 4),
)
def test_cache_never_serves_a_book_behind_its_events(ops: list[tuple[str, int]], keep: int) -> None:
    """Whatever the order of events and flushes and the bound, every book the cache hands
    out holds every event given to its journey, and after a flush the table agrees."""
    table = Table()
    cache = BookCache(table.read, keep=keep)
    given_events: dict[str, int] = {}
    for n, (op, journey) in enumerate(ops):
        if op == "event":
            key = f"j{journey}"
            change(cache, key, n)
            given_events[key] = given_events.get(key, 0) + 1
        else:
            flush(cache, table)
        assert len(cache.clean_keys()) <= keep
    for key, count in given_events.items():
        book = cache.get(key)
        assert book is not None and len(book.event_ids()) == count
    flush(cache, table)
    for key, count in given_events.items():
        assert len(JourneyBook.from_bytes(table[key]).event_ids()) == count
