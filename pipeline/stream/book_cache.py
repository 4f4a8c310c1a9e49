"""The book cache: journey books (`pipeline.journey.book`) between the state table and the
engine, read once, written once per flush.

The worker keeps every book it touched since the last acknowledged flush here, decoded,
and writes them to the Faust table only after ClickHouse acknowledged the rows they
produced. That order is what makes a crash harmless: state that reached the table always
has its rows stored, and rows whose state did not reach the table are recomputed,
identically, from the replayed input.

Once written, a book stays decoded (clean: equal to its table copy) among the `keep` most
recently used, so a journey's next event does not read and decode it again; every change
goes through this cache, so a clean copy cannot fall behind the table.

Books are kept under `book_key` (a customer's book and a journey's book never share a key,
even when the two ids are the same string). Tables written before that distinction hold a
customer's book under the bare customer id: `Runtime` re-files those at a partition's start,
and a read never takes a book of the other kind for the key asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.contract import Touchpoint
from pipeline.journey import JourneyBook, book_key

# The state table holds the partitions' event-time clocks beside the books, under keys no
# book can have.
CLOCK_PREFIX = "\x00clock:"


def clock_key(partition: int) -> str:
    """Table key holding a partition's event-time clock (never a journey key: NUL first)."""
    return f"{CLOCK_PREFIX}{partition}"


class BookCache:
    """Decoded books by book key, the dirty ones per partition until their checkpoint."""

    def __init__(self, read: Callable[[str], bytes | None], keep: int = 10_000) -> None:
        self._read = read
        self.keep = keep
        self._books: dict[str, JourneyBook] = {}  # least recently used first
        self._dirty: dict[int, dict[str, int]] = {}  # partition -> key -> generation
        self.generation = 0

    def __len__(self) -> int:
        return len(self._books)

    def get(self, key: str) -> JourneyBook | None:
        book = self._books.pop(key, None)
        if book is None:
            raw = self._read(key)
            if raw is None:
                return None
            book = JourneyBook.from_bytes(raw)
            if book.book_key != key:  # the other kind's book, filed by an older version
                return None
        self._books[key] = book  # most recently used last
        return book

    def peek(self, key: str) -> JourneyBook | None:
        """The book if it is in memory (dirty books always are), without reading the table
        or changing its recency: for readers other than the engine (the context API)."""
        return self._books.get(key)

    def get_or_create(self, touchpoint: Touchpoint) -> JourneyBook:
        key = book_key(touchpoint)
        book = self.get(key)
        if book is None:
            book = self._books[key] = JourneyBook.for_touchpoint(touchpoint)
        return book

    def clear(self) -> None:
        """Forget every book, dirty ones too (the runtime replays from the last checkpoint)."""
        self._books.clear()
        self._dirty.clear()

    def drop(self, keys: Iterable[str]) -> None:
        """Forget these books, dirty or not: they were deleted from the table (erased)."""
        for key in keys:
            self._books.pop(key, None)
            for dirty in self._dirty.values():
                dirty.pop(key, None)

    def touched(self, partition: int, key: str) -> None:
        self._dirty.setdefault(partition, {})[key] = self.generation

    def snapshot(self, partitions: Iterable[int]) -> tuple[int, dict[int, dict[str, bytes]]]:
        """The encoded dirty books of these partitions, and the generation they belong to."""
        generation = self.generation
        self.generation += 1
        encoded = {
            partition: {key: self._books[key].to_bytes() for key in self._dirty.get(partition, {})}
            for partition in partitions
        }
        return generation, encoded

    def persisted(self, partition: int, generation: int) -> None:
        """The snapshot of `generation` reached the table: books not touched since are clean."""
        dirty = self._dirty.get(partition, {})
        for key, touched_in in list(dirty.items()):
            if touched_in <= generation:
                del dirty[key]

    def clean_keys(self) -> list[str]:
        """Books equal to their table copy, least recently used first."""
        dirty = {key for keys in self._dirty.values() for key in keys}
        return [key for key in self._books if key not in dirty]

    def evict_clean(self, keep: int | None = None) -> None:
        """Keep at most `keep` (default: the cache's own) clean books, the most recent."""
        clean = self.clean_keys()
        limit = self.keep if keep is None else keep
        for key in clean[: max(len(clean) - limit, 0)]:
            del self._books[key]
