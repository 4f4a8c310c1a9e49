"""Touchpoints for the journey engine's tests, and the engine played over them.

`touchpoint_factory` (a fixture, through `pytest_plugins` in tests/conftest.py) builds
touchpoints of one customer at hours after `START`; `play` feeds them into journey books as
the worker would (by routing key) and advances every book to a moment, so a test reads the
books and the `Changes` each touchpoint made.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.contract import Touchpoint
from pipeline.journey import Changes, JourneyBook, ScoreModel, add, advance, load_score_model

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MODEL = load_score_model()


class TouchpointFactory:
    """Builds touchpoints at `hours` after START; ids are sequential unless given."""

    def __init__(self, customer_id: str = "cust-1") -> None:
        self.customer_id = customer_id
        self.counter = itertools.count(1)

    def __call__(
        self,
        type: str,
        hours: float = 0,
        *,
        department: str = "customer_service",
        journey_id: str | None = None,
        channel: str | None = None,
        stage: str | None = None,
        event_id: str | None = None,
        customer_id: str | None = None,
        **attributes: Any,
    ) -> Touchpoint:
        return Touchpoint(
            event_id=event_id or f"ev-{next(self.counter):04d}",
            occurred_at=START + timedelta(hours=hours),
            customer_id=customer_id or self.customer_id,
            department=department,
            type=type,
            journey_id=journey_id,
            stage=stage,
            channel=channel,
            attributes=attributes,
        )


@pytest.fixture
def touchpoint_factory() -> TouchpointFactory:
    """A fresh factory per test: event ids start again at ev-0001."""
    return TouchpointFactory()


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def play(
    touchpoints: Iterable[Touchpoint], model: ScoreModel = MODEL, until: datetime | None = None
) -> tuple[dict[str, JourneyBook], list[Changes]]:
    """Feed touchpoints into books by routing key, then advance every book to `until`."""
    books: dict[str, JourneyBook] = {}
    log: list[Changes] = []
    for tp in touchpoints:
        book = books.setdefault(tp.key, JourneyBook.for_touchpoint(tp))
        log.append(add(book, tp, model))
    if until is not None:
        log.extend(advance(book, until, model) for book in books.values())
    return books, log


def only_journey(books: dict[str, JourneyBook]) -> Any:
    journeys = [j for b in books.values() for j in b.journeys]
    assert len(journeys) == 1, [j.journey_id for j in journeys]
    return journeys[0]
