"""The rescore's scoring of a book: all of a journey's events at once, then its deadlines,
gives the rows that adding the events one by one (as the worker does) gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import Touchpoint, Validator
from pipeline.journey import JourneyBook, ScoreModel, add, book_key, load_score_model
from pipeline.journey.events import stored_event, to_us
from pipeline.rescore.books import (
    BookRows,
    _catch_up,
    book_of,
    came_without_journey_id,
    score_book,
    stored_row,
)
from pipeline.simulate import SimulationConfig, simulate
from pipeline.stream.rows import Latest, Position, touchpoint_row

MODEL = load_score_model()
END = datetime(2026, 5, 1, tzinfo=UTC)
AS_OF = to_us(END + timedelta(days=60))
AT = Position("rescore", 0, 0, END)


def by_event(touchpoints: list[Touchpoint], model: ScoreModel) -> BookRows:
    """The worker's way: one `add` per event in event-time order, the clock stepped past
    each deadline before the next event (the reference the rescore must match)."""
    ordered = sorted(touchpoints, key=lambda t: (t.occurred_at, t.event_id))
    book = JourneyBook.for_touchpoint(ordered[0])
    latest = Latest()
    for touchpoint in ordered:
        _catch_up(book, to_us(touchpoint.occurred_at), model, latest, AT)
        changes = add(book, touchpoint, model)
        latest.keep(changes, book.customer_id, book.clock, model.version, AT)
    _catch_up(book, AS_OF, model, latest, AT)
    built = latest.build()
    return BookRows(built.journey_rows, built.signal_rows, len(ordered))


def simulated_books(customers: int, seed: int) -> dict[str, list[Touchpoint]]:
    config = SimulationConfig(customers=customers, days=30, start=END - timedelta(days=30),
                              seed=seed)  # fmt: skip
    validator = Validator()
    books: dict[str, list[Touchpoint]] = {}
    for delivery in simulate(config)[0]:
        result = validator.validate(delivery.value, now=END)
        if isinstance(result, Touchpoint):
            books.setdefault(book_key(result), []).append(result)
    return books


def active_without_versions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The signals a reader sees (active ones), without their version."""
    return sorted(({k: v for k, v in r.items() if k != "version"} for r in rows if r["active"]),
                  key=lambda r: r["signal_id"])  # fmt: skip


BOOKS = simulated_books(120, seed=3)


def test_a_simulated_month_scores_as_the_worker_scores_it_event_by_event() -> None:
    assert len(BOOKS) > 100
    for touchpoints in BOOKS.values():
        expected = by_event(touchpoints, MODEL)
        found = score_book(touchpoints, MODEL, AS_OF, AT)
        assert sorted(found.journeys, key=lambda r: r["journey_id"]) == sorted(
            expected.journeys, key=lambda r: r["journey_id"]
        )
        # The active signals, but for their version (the snapshot that last changed them,
        # see books.py); one by one, a signal can also appear and be retracted later (a
        # promise broken, then kept late), which scoring the journey once never writes.
        assert all(row["active"] for row in found.signals)
        assert active_without_versions(found.signals) == active_without_versions(expected.signals)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(BOOKS)), st.randoms(use_true_random=False))
def test_arrival_order_and_re_sent_events_change_nothing(key: str, rng: Any) -> None:
    touchpoints = list(BOOKS[key])
    expected = score_book(touchpoints, MODEL, AS_OF, AT)
    shuffled = touchpoints + rng.sample(touchpoints, k=min(3, len(touchpoints)))
    rng.shuffle(shuffled)
    found = score_book(shuffled, MODEL, AS_OF, AT)
    assert (found.journeys, found.signals) == (expected.journeys, expected.signals)


def test_a_stored_row_reads_back_as_the_engine_keeps_its_touchpoint() -> None:
    for touchpoints in list(BOOKS.values())[:30]:
        book = JourneyBook.for_touchpoint(touchpoints[0])
        for touchpoint in sorted(touchpoints, key=lambda t: (t.occurred_at, t.event_id)):
            changes = add(book, touchpoint, MODEL)
            if changes.assignment is None:
                continue
            row = touchpoint_row(touchpoint, changes.assignment, AT)
            stored = [row["event_id"], to_us(row["occurred_at"]), row["customer_id"],
                      row["journey_id"], row["department"], row["stage"], row["channel"],
                      row["type"], row["attributes"], row["schema_version"]]  # fmt: skip
            assert stored_row(stored, MODEL) == (
                book_of(touchpoint),
                stored_event(touchpoint, MODEL),
            )


@pytest.mark.parametrize(
    ("customer", "journey", "derived"),
    [
        ("CUST-1", "CUST-1@2026-03-01T10:00:00Z#0a1b2c3d", True),
        ("CUST-1", "CUST-12@2026-03-01T10:00:00Z#0a1b2c3d", False),  # another customer's form
        ("CUST-1", "CUST-1@2026-03-01T10:00:00Z#0a1b2c3", False),
        ("CUST-1", "order-77", False),
        ("CUST-1", "CUST-1", False),
    ],
)
def test_a_derived_journey_id_is_told_from_a_sent_one(
    customer: str, journey: str, derived: bool
) -> None:
    assert came_without_journey_id(customer, journey) is derived
