"""The customer index the context API finds a customer's journeys by: it follows the books
of the partitions the worker holds (new books, a partition's recovery from its state, a
partition moving away, a rewind), and costs nothing per event once a book exists."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.journey import JourneyBook, load_score_model
from pipeline.journey.book import CUSTOMER_BOOK_PREFIX
from pipeline.stream.customers import CustomerIndex
from pipeline.stream.outbox import partition_of
from tests.support.runtime_rig import TOPIC, RuntimeRig, record

PARTITIONS = 4
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def event(n: int, customer: str, journey_id: str | None) -> bytes:
    value = {"event_id": f"ev-{n}", "occurred_at": (START + timedelta(minutes=n)).isoformat(),
             "customer_id": customer, "department": "sales", "type": "contact"}  # fmt: skip
    if journey_id is not None:
        value["journey_id"] = journey_id
    return json.dumps(value).encode()


def place(key: str) -> int:
    return partition_of(key.encode(), PARTITIONS)


def deliver(rig: RuntimeRig, sent: list[tuple[str, str | None]], first: int = 0) -> None:
    offsets: dict[int, int] = {}
    records = []
    for n, (customer, journey_id) in enumerate(sent, start=first):
        partition = place(journey_id or customer)
        offset = offsets[partition] = offsets.get(partition, first) + 1
        records.append(record(TOPIC, partition, offset, event(n, customer, journey_id)))
    rig.deliver(records)


def indexed(rig: RuntimeRig, customer: str) -> set[str]:
    customers = rig.runtime.processor.customers
    return {key for _, key in customers.books_of(customer, range(PARTITIONS))}


def test_new_journey_keyed_books_are_indexed_on_their_partition(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory(partitions=PARTITIONS)
    cases = [f"CASE-{n}" for n in range(12)]
    deliver(rig, [("c1", case) for case in cases] + [("c1", None), ("c2", "OTHER")])
    assert indexed(rig, "c1") == set(cases)  # the customer's own book is found by its key
    assert indexed(rig, "c2") == {"OTHER"}
    for partition, key in rig.runtime.processor.customers.books_of("c1", range(PARTITIONS)):
        assert place(key) == partition
    # A partition moving away takes its entries with it.
    moved = place("CASE-0")
    rig.runtime.forget(moved)
    assert indexed(rig, "c1") == {c for c in cases if place(c) != moved}


def test_a_partitions_recovery_indexes_the_books_it_holds(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    model = load_score_model()
    first = runtime_factory(partitions=PARTITIONS)
    deliver(first, [("c1", f"CASE-{n}") for n in range(8)] + [("c1", None)])
    keys = [f"CASE-{n}" for n in range(8)] + [CUSTOMER_BOOK_PREFIX + "c1"]
    stored = {key: book.to_bytes() for key in keys
              if (book := first.runtime.books.peek(key)) is not None}  # fmt: skip
    assert len(stored) == 9 and all(JourneyBook.from_bytes(b).score_model == model.version
                                    for b in stored.values())  # fmt: skip
    # A worker that is assigned the partitions and holds their state (no new book).
    second = runtime_factory(partitions=PARTITIONS, table_data=stored)
    assert indexed(second, "c1") == set()
    deliver(second, [("c1", f"CASE-{n}") for n in range(8)], first=100)
    assert indexed(second, "c1") == {f"CASE-{n}" for n in range(8)}


def test_a_rewind_forgets_the_index_and_recovery_builds_it_again(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory(partitions=PARTITIONS)
    deliver(rig, [("c1", "CASE-1")])
    rig.runtime.processor.reset()
    assert indexed(rig, "c1") == set()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 3),
                          st.sampled_from(["k1", "k2", "k3", "k4"])), max_size=40))  # fmt: skip
def test_the_index_holds_each_added_book_once_until_its_partition_is_forgotten(
    operations: list[tuple[str, int, str]],
) -> None:
    index = CustomerIndex()
    expected: dict[int, set[tuple[str, str]]] = {}
    for customer, partition, key in operations:
        if key == "k4" and customer == "c":  # stands for a partition moving away
            index.forget(partition)
            expected.pop(partition, None)
            continue
        index.add(partition, customer, key)
        expected.setdefault(partition, set()).add((customer, key))
    for customer in "abc":
        found = index.books_of(customer, range(4))
        assert len(found) == len(set(found))
        assert set(found) == {(p, k) for p, pairs in expected.items() for c, k in pairs
                              if c == customer}  # fmt: skip
    assert len(index) == sum(len(pairs) for pairs in expected.values())
