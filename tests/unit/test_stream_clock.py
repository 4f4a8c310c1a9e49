"""The event-time clock converts times exactly, so catching up to it always ends.

The catch-up loop steps a journey to just past each deadline (`from_us(deadline + 1)`) and
relies on the engine reading that moment back as later than the deadline. Conversions
through float seconds lost the microsecond for some real dates (1971, 1900) and for the
calendar's edges (year 0001): the step landed on the deadline, nothing fired, and the loop
spun for ever with the worker's event loop pinned at 100% CPU.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import Validator
from pipeline.journey import load_score_model
from pipeline.stream.book_cache import BookCache
from pipeline.stream.clock import from_us, to_us
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor

NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
FIRST_US = to_us(datetime(1, 1, 1, tzinfo=UTC))
LAST_US = to_us(datetime(9999, 12, 30, tzinfo=UTC))


@settings(max_examples=2000)
@given(st.integers(FIRST_US, LAST_US) | st.integers(-(10**15), 10**15))
def test_microseconds_survive_the_round_trip_in_every_year(us: int) -> None:
    assert to_us(from_us(us)) == us
    assert to_us(from_us(us + 1)) > us  # the catch-up step is past the deadline


def processor() -> JourneyProcessor:
    return JourneyProcessor(
        load_score_model(), Validator(), BookCache({}.get), lambda key: 0,
        touchpoints_topic="touchpoints", alert_horizon_s=3600 * 24,
        dedup=RecentEventIds(3600 * 24 * 1_000_000, 10_000), metrics=Metrics(),
    )  # fmt: skip


def promise(occurred_at: str, due_at: str) -> bytes:
    return orjson.dumps(
        {"event_id": "e1", "occurred_at": occurred_at, "customer_id": "c1", "journey_id": "J1",
         "department": "sales", "type": "promise_made",
         "attributes": {"promise_id": "p1", "due_at": due_at}}
    )  # fmt: skip


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("occurred_at", "due_at"),
    [
        # 1971: float seconds read 00:56:58.614989 back as .614988 (found by search)
        ("1971-02-01T00:00:00Z", "1971-02-08T00:56:58.614989Z"),
        ("1900-03-01T00:00:00Z", "1900-03-05T05:25:17.315914Z"),
        ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00.000001Z"),
    ],
)
def test_a_broken_promise_fires_once_the_clock_passes_it(occurred_at: str, due_at: str) -> None:
    p = processor()
    p.process(0, [Inbound("touchpoints", 0, 0, promise(occurred_at, due_at))], NOW)
    tick = Inbound("touchpoints.routed", 0, 1, b"", tick_us=to_us(NOW))
    out = p.process(0, [tick], NOW)
    assert [row["signal"] for row in out.rows["journey_signals"]] == ["promise_broken"]
    assert out.rows["journey_signals"][0]["effective_at"] == datetime.fromisoformat(due_at)
