"""Book keys: a journey's book and a customer's book never share a key, whatever the ids.

Journey ids and customer ids come from different systems and may be the same string (order
"10442" of customer "10442"); the worker's state table also keeps its partition clocks
among the books. One key for two of them mixed a customer's journeys into an order's book
(the engine raised ValueError and the worker stopped) or read a clock as a book.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from pipeline.contract import Touchpoint
from pipeline.journey import JourneyBook, book_key, routing_key
from pipeline.stream.book_cache import CLOCK_PREFIX, clock_key

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Identifiers as the contract allows them: any 1-128 characters, NUL and prefixes included.
IDS = st.text(min_size=1, max_size=20) | st.sampled_from(
    ["\x00", "\x00clock:0", "\x00customer:C-1", "\x00journey:J", "C-1", "customer:C-1"]
)


def touchpoint(customer_id: str, journey_id: str | None) -> Touchpoint:
    return Touchpoint(event_id="e", occurred_at=AT, customer_id=customer_id,
                      department="sales", type="contact", journey_id=journey_id)  # fmt: skip


@given(st.lists(st.tuples(IDS, st.none() | IDS), min_size=1, max_size=8), st.integers(0, 99))
def test_books_of_different_journeys_never_share_a_key(
    ids: list[tuple[str, str | None]], partition: int
) -> None:
    touchpoints = [touchpoint(customer, journey) for customer, journey in ids]
    books = {}
    for tp in touchpoints:
        # The journey a book holds: its journey id, or the customer's journeys without one.
        books.setdefault(book_key(tp), set()).add((tp.journey_id is not None, tp.key))
    assert all(len(kinds) == 1 for kinds in books.values()), books
    for tp in touchpoints:
        key = book_key(tp)
        assert not key.startswith(CLOCK_PREFIX) and key != clock_key(partition)
        assert routing_key(key) == tp.key  # the Kafka key, which places it on a partition
        assert JourneyBook.for_touchpoint(tp).book_key == key


def test_journey_keyed_books_keep_the_key_state_tables_already_hold() -> None:
    assert book_key(touchpoint("C-9", "ORD-10442")) == "ORD-10442"
    assert book_key(touchpoint("C-1", None)) == "\x00customer:C-1"
