"""The journey processor without Faust or a broker, and the raw messages it takes.

`processor` builds the worker's processor as the worker wires it (score model, validator,
book cache, partitioner, de-duplication), on a dict standing for the state table;
`touchpoint` and `promise` encode events at minutes after `T0`; `SCRIPT` is a short day of
three journeys (one customer-keyed, a promise, a survey, a re-sent event), for the tests
that slice or reorder one input and compare what comes out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.contract import Touchpoint, Validator, encode_touchpoint
from pipeline.journey import load_score_model
from pipeline.stream.book_cache import BookCache
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor
from pipeline.stream.worker import partitioner

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
DAY_S = 24 * 3600


def processor(
    partitions: int = 1,
    table: dict[str, bytes] | None = None,
    *,
    validator: Validator | None = None,
    alert_horizon_s: int = DAY_S,
    books_kept: int = 10_000,
) -> JourneyProcessor:
    """One partition unless asked: no routing. `table`: the state an earlier worker left.
    `books_kept`: decoded books the cache keeps (few: evicted books are read back)."""
    state = table if table is not None else {}
    return JourneyProcessor(
        load_score_model(), validator or Validator(), BookCache(state.get, keep=books_kept),
        partitioner(partitions), touchpoints_topic="touchpoints", alert_horizon_s=alert_horizon_s,
        dedup=RecentEventIds(DAY_S * 1_000_000, 10_000), metrics=Metrics(),
    )  # fmt: skip


def touchpoint(event_id: str, minutes: float, kind: str = "contact", **fields: Any) -> bytes:
    base: dict[str, Any] = {
        "event_id": event_id, "occurred_at": T0 + timedelta(minutes=minutes),
        "customer_id": fields.pop("customer_id", "c1"), "department": "customer_service",
        "type": kind, "journey_id": fields.pop("journey_id", "J1"), "channel": "phone",
    }  # fmt: skip
    base.update(fields)
    return encode_touchpoint(Touchpoint(**base))


def promise(event_id: str, minutes: float, due_hours: float, journey: str) -> bytes:
    due = (T0 + timedelta(minutes=minutes, hours=due_hours)).isoformat()
    attributes = {"promise_id": "p1", "due_at": due}
    return touchpoint(
        event_id, minutes, "promise_made", journey_id=journey, department="maintenance",
        attributes=attributes,
    )  # fmt: skip


def inbound(values: list[bytes], partition: int = 0, start: int = 0) -> list[Inbound]:
    return [Inbound("touchpoints", partition, start + i, v) for i, v in enumerate(values)]


SCRIPT = [
    touchpoint("a1", 0, attributes={"resolved": False}),
    touchpoint("a2", 20, attributes={"resolved": True, "wait_seconds": 900}),
    promise("a3", 30, 3, "J1"),
    touchpoint("b1", 40, journey_id="J2", customer_id="c2", attributes={"resolved": True}),
    touchpoint("c1", 50, journey_id=None, customer_id="c3", attributes={"resolved": False}),
    touchpoint("c2", 70, journey_id=None, customer_id="c3", attributes={"resolved": False}),
    touchpoint("b2", 60 * 6, "survey_response", journey_id="J2", customer_id="c2",
               attributes={"csat": 2}),
    touchpoint("a2", 20, attributes={"resolved": True, "wait_seconds": 900}),  # re-sent
]  # fmt: skip
