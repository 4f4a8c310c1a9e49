"""A scripted company's traffic for end-to-end worker tests, and what the worker must store.

`scripted_touchpoints` makes multi-department journeys a few days old (every deadline is
already in the past when the worker sees them); `assert_matches_engine` compares what a
worker stored (`QUERIES`, read with `WorkerProcess.dump`) with the pure engine run directly
over the same events, every book advanced to now deadline by deadline.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.contract import Touchpoint, encode_touchpoint
from pipeline.journey import JourneyBook, add, advance, book_key, load_score_model, next_deadline
from tests.support.kafka import Message

# What a worker stored, as `assert_matches_engine` reads it (`WorkerProcess.dump(QUERIES)`).
QUERIES = {
    "journeys": "SELECT journey_id, customer_id, status, score, operational_score, survey_score,"
    " band, touchpoint_count, lost_points, lost_points_beyond_front_desk, score_model,"
    " updated_at, version FROM journeys FINAL ORDER BY journey_id",
    "signals": "SELECT signal_id, journey_id, signal, department, stage, impact, effective_at,"
    " evidence_event_ids, active, version FROM journey_signals FINAL ORDER BY signal_id",
    "touchpoints": "SELECT event_id, journey_id, stage, department, type"
    " FROM touchpoints FINAL ORDER BY event_id",
    "touchpoint_rows": "SELECT count() AS n FROM touchpoints",
    "dead_letters": "SELECT reason_code, reason, department, raw, source_partition,"
    " source_offset FROM dead_letters FINAL ORDER BY source_partition, source_offset",
}


def scripted_touchpoints(journeys: int, seed: int = 7) -> list[Touchpoint]:
    """Multi-department journeys a few days old: every deadline is already in the past."""
    rng = random.Random(seed)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=6)
    events: list[Touchpoint] = []
    for n in range(journeys):
        start = base + timedelta(minutes=rng.randrange(0, 60 * 24))
        keyed = n % 3 != 0  # a third are customer-keyed (no journey_id)
        journey_id = f"J{n:05d}" if keyed else None
        customer = f"C{n:05d}"

        def tp(
            i: int, minutes: int, department: str, kind: str,
            n: int = n, start: datetime = start, customer: str = customer,
            journey_id: str | None = journey_id, **attrs: Any,
        ) -> None:  # fmt: skip
            events.append(
                Touchpoint(
                    event_id=f"E{n:05d}-{i}", occurred_at=start + timedelta(minutes=minutes),
                    customer_id=customer, department=department, type=kind,
                    journey_id=journey_id, channel="phone", attributes=attrs,
                )
            )  # fmt: skip

        tp(0, 0, "sales", "order_placed", order_id=f"O{n}")
        tp(1, 30, "customer_service", "contact", resolved=rng.random() < 0.5, wait_seconds=60)
        tp(2, 90, "customer_service", "contact", resolved=True, wait_seconds=900)
        due = (start + timedelta(hours=rng.choice([4, 30]))).isoformat()
        tp(3, 120, "maintenance", "promise_made", promise_id=f"P{n}", due_at=due)
        if rng.random() < 0.5:  # else: never kept, and this journey gets no later event
            tp(4, 200, "maintenance", "promise_kept", promise_id=f"P{n}")
            tp(5, 240, "billing", "invoice_issued", invoice_id=f"I{n}", amount=10)
            if rng.random() < 0.4:
                tp(6, 300, "billing", "invoice_corrected", invoice_id=f"I{n}")
            if rng.random() < 0.5:
                tp(7, 330, "delivery", "handoff", to_department="sales", context_transferred=False)
            if rng.random() < 0.5:
                tp(8, 360, "customer_service", "survey_response", csat=rng.randint(1, 5))
    return events


def expected_results(touchpoints: list[Touchpoint]) -> dict[str, Any]:
    """What the engine computes directly: every book advanced to now, deadline by deadline."""
    model = load_score_model()
    books: dict[str, JourneyBook] = {}
    for touchpoint in touchpoints:
        book = books.setdefault(book_key(touchpoint), JourneyBook.for_touchpoint(touchpoint))
        add(book, touchpoint, model)
    now = datetime.now(UTC)
    journeys, signals = {}, {}
    for book in books.values():
        while (deadline := next_deadline(book, model)) is not None and deadline < now:
            advance(book, deadline + timedelta(microseconds=1), model)
        for score in book.scores(model):
            journeys[score.journey_id] = score
            for s in score.signals:
                signals[s.signal_id] = s
    return {"journeys": journeys, "signals": signals}


def as_messages(touchpoints: list[Touchpoint]) -> list[Message]:
    # Every fifth event is keyed by customer although it has a journey_id: the worker must
    # route it to its journey's partition.
    return [
        ((tp.customer_id if i % 5 == 0 else tp.key).encode(), encode_touchpoint(tp))
        for i, tp in enumerate(touchpoints)
    ]


def assert_matches_engine(dump: dict[str, Any], touchpoints: list[Touchpoint]) -> None:
    expected = expected_results(touchpoints)
    stored = {row["journey_id"]: row for row in dump["journeys"]}
    assert set(stored) == set(expected["journeys"])
    for journey_id, score in expected["journeys"].items():
        row = stored[journey_id]
        assert (row["score"], row["band"], row["status"], row["touchpoint_count"]) == (
            score.score, score.band, score.status, score.touchpoint_count,
        ), journey_id  # fmt: skip
        assert row["lost_points_beyond_front_desk"] == score.lost_points_beyond_front_desk
        assert row["survey_score"] == score.survey_score
    active = {row["signal_id"]: row for row in dump["signals"] if row["active"] == 1}
    assert set(active) == set(expected["signals"])
    for signal_id, s in expected["signals"].items():
        row = active[signal_id]
        assert (row["signal"], row["department"], row["stage"], row["impact"]) == (
            s.signal, s.department, s.stage, s.impact,
        )  # fmt: skip
    kinds = {row["signal"] for row in active.values()}
    assert {"promise_broken", "repeat_contact", "promise_kept"} <= kinds
    assert {row["event_id"] for row in dump["touchpoints"]} == {tp.event_id for tp in touchpoints}
