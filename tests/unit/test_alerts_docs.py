"""The alert docs/departments.md shows departments is what the worker publishes for the
same events, field for field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipeline.contract import Touchpoint, Validator, encode_touchpoint
from pipeline.journey import load_score_model
from pipeline.stream.book_cache import BookCache
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor
from pipeline.stream.worker import partitioner

DOC = Path(__file__).resolve().parents[2] / "docs" / "departments.md"
T0 = datetime(2026, 3, 2, 9, 14, tzinfo=UTC)


def event(n: int, at: datetime, kind: str, department: str, **attributes: Any) -> bytes:
    return encode_touchpoint(Touchpoint(
        event_id=f"e{n}", occurred_at=at, customer_id="C-10442", journey_id="case-88412",
        department=department, type=kind, channel="phone", stage="service",
        attributes=attributes,
    ))  # fmt: skip


def test_the_documented_alert_is_the_one_the_worker_publishes() -> None:
    processor = JourneyProcessor(
        load_score_model(), Validator(), BookCache(lambda key: None), partitioner(1),
        touchpoints_topic="touchpoints", alert_horizon_s=86_400,
        dedup=RecentEventIds(86_400_000_000, 1000), metrics=Metrics(),
    )  # fmt: skip
    values = [
        event(1, T0, "contact", "customer_service", reason="boiler leaking", resolved=False),
        event(2, T0 + timedelta(minutes=6), "handoff", "customer_service",
              to_department="maintenance", context_transferred=True),
        event(3, T0 + timedelta(minutes=48), "promise_made", "maintenance", promise_id="p-771",
              due_at="2026-03-03T12:00:00+00:00", description="technician visit"),
        event(4, datetime(2026, 3, 3, 15, tzinfo=UTC), "contact", "customer_service",
              reason="nobody came", resolved=False),
    ]  # fmt: skip
    inbound = [Inbound("touchpoints", 0, n, value) for n, value in enumerate(values)]
    out = processor.process(0, inbound, datetime(2026, 3, 4, tzinfo=UTC))
    published = [orjson.loads(body) for _, body in out.alerts]
    broken = next(a for a in published if a["kind"] == "promise_broken")
    sample = re.search(r"```json\n(\{\"alert_id\": \"promise_broken.*?)```", DOC.read_text(),
                       flags=re.DOTALL)  # fmt: skip
    assert sample, "docs/departments.md: no promise_broken alert sample"
    assert json.loads(sample.group(1)) == broken
