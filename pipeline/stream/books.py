"""Journey books between the state table and the engine: read once, written once per flush.

The worker keeps every book it touched since the last acknowledged flush here, decoded,
and writes them to the Faust table only after ClickHouse acknowledged the rows they
produced. That order is what makes a crash harmless: state that reached the table always
has its rows stored, and rows whose state did not reach the table are recomputed,
identically, from the replayed input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.contract import Touchpoint
from pipeline.journey import JourneyBook

CLOCK_PREFIX = "\x00clock:"


def clock_key(partition: int) -> str:
    """Table key holding a partition's event-time clock (never a journey key: NUL first)."""
    return f"{CLOCK_PREFIX}{partition}"


class BookCache:
    def __init__(self, read: Callable[[str], bytes | None]) -> None:
        self._read = read
        self._books: dict[str, JourneyBook] = {}
        self._dirty: dict[int, dict[str, int]] = {}  # partition -> key -> generation
        self.generation = 0

    def __len__(self) -> int:
        return len(self._books)

    def get(self, key: str) -> JourneyBook | None:
        book = self._books.get(key)
        if book is None:
            raw = self._read(key)
            if raw is not None:
                book = self._books[key] = JourneyBook.from_bytes(raw)
        return book

    def get_or_create(self, touchpoint: Touchpoint) -> JourneyBook:
        book = self.get(touchpoint.key)
        if book is None:
            book = self._books[touchpoint.key] = JourneyBook.for_touchpoint(touchpoint)
        return book

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
        """The snapshot of `generation` reached the table: forget books not touched since."""
        dirty = self._dirty.get(partition, {})
        for key, touched_in in list(dirty.items()):
            if touched_in <= generation:
                del dirty[key]
                self._books.pop(key, None)

    def clean_keys(self) -> list[str]:
        dirty = {key for keys in self._dirty.values() for key in keys}
        return [key for key in self._books if key not in dirty]

    def evict_clean(self) -> None:
        """Drop books read but never changed (their table copy is current)."""
        for key in self.clean_keys():
            del self._books[key]
