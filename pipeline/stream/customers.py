"""Which journeys a customer has on this worker: customer id -> keys of journey-keyed books.

A customer's journeys without journey_id share one book, found by its key; those with a
journey_id each have a book of their own, placed on the partition of that journey_id, so
a customer's books are spread over partitions and workers. Without this index, finding
them would read every book. Each worker indexes the partitions it owns, as their books
are: a partition's entries are built when it is recovered (or first asked about) from the
books it holds, grow as new books are created, and are dropped when it moves to another
worker, which builds them again from the partition's state; nothing is written anywhere,
so the index cannot disagree with the state it is built from.
"""

from __future__ import annotations

from collections.abc import Iterable


class CustomerIndex:
    def __init__(self) -> None:
        # partition -> customer id -> book keys; a list, since a customer has few journeys
        self._partitions: dict[int, dict[str, list[str]]] = {}

    def __len__(self) -> int:
        return sum(len(keys) for p in self._partitions.values() for keys in p.values())

    def start(self, partition: int) -> None:
        """Index `partition` from scratch (its books are `add`ed next)."""
        self._partitions[partition] = {}

    def indexed(self, partition: int) -> bool:
        return partition in self._partitions

    def add(self, partition: int, customer_id: str, key: str) -> None:
        """A book of the customer on the partition (a journey-keyed one: the customer's own
        book is found by its key)."""
        keys = self._partitions.setdefault(partition, {}).setdefault(customer_id, [])
        if key not in keys:
            keys.append(key)

    def books_of(self, customer_id: str, partitions: Iterable[int]) -> list[tuple[int, str]]:
        """(partition, book key) of the customer's journey-keyed books on these partitions."""
        found = []
        for partition in partitions:
            for key in self._partitions.get(partition, {}).get(customer_id, ()):
                found.append((partition, key))
        return found

    def forget(self, partition: int) -> None:
        self._partitions.pop(partition, None)

    def clear(self) -> None:
        self._partitions.clear()
