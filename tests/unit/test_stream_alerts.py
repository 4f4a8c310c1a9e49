"""Alerts as the worker raises them: each kind with its event-time `raised_at` and `act_by`,
the journey's context attached, and one `alerts` row per alert published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.contract import Touchpoint, Validator, encode_touchpoint
from pipeline.journey import load_score_model
from pipeline.stream.book_cache import BookCache
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor, Output
from pipeline.stream.worker import partitioner

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def processor() -> JourneyProcessor:
    return JourneyProcessor(
        load_score_model(), Validator(), BookCache(lambda key: None), partitioner(1),
        touchpoints_topic="touchpoints", alert_horizon_s=3600 * 24,
        dedup=RecentEventIds(3600 * 24 * 1_000_000, 10_000), metrics=Metrics(),
        alert_act_within_s=3600 * 8,
    )  # fmt: skip


def event(event_id: str, at: datetime, kind: str, department: str, **attributes: Any) -> bytes:
    return encode_touchpoint(Touchpoint(
        event_id=event_id, occurred_at=at, customer_id="c1", journey_id="J1",
        department=department, type=kind, channel="phone", attributes=attributes,
    ))  # fmt: skip


def run(p: JourneyProcessor, values: list[bytes], start: int = 0) -> Output:
    inbound = [Inbound("touchpoints", 0, start + i, v) for i, v in enumerate(values)]
    return p.process(0, inbound, NOW)


def alerts(out: Output) -> dict[str, dict[str, Any]]:
    return {a["kind"]: a for a in (orjson.loads(body) for _, body in out.alerts)}


def test_each_alert_kind_has_event_time_deadlines_context_and_a_stored_row() -> None:
    p = processor()
    due = T0 + 30 * HOUR
    first = run(p, [
        event("e1", T0, "contact", "customer_service", reason="boiler leaking", resolved=False),
        event("e2", T0 + HOUR, "promise_made", "maintenance", promise_id="p1",
              due_at=due.isoformat(), description="technician visit"),
        event("e3", T0 + HOUR, "feedback_received", "billing", feedback_id="f1", sentiment=-1),
    ])  # fmt: skip
    # The promise is made 29 h before it falls due: no alert yet (24 h horizon).
    assert "promise_due_soon" not in alerts(first)
    later = run(p, [event("e4", T0 + 7 * HOUR, "contact", "customer_service", resolved=False)],
                start=3)  # fmt: skip
    soon = alerts(later)["promise_due_soon"]
    # Raised when the promise entered the horizon, whenever the worker noticed.
    assert soon["raised_at"] == (due - 24 * HOUR).isoformat().replace("+00:00", "Z")
    assert soon["act_by"] == due.isoformat().replace("+00:00", "Z")
    context = soon["context"]
    assert context["already_told_us"] == ["boiler leaking"]
    assert [e["type"] for e in context["timeline"]][:2] == ["contact", "promise_made"]
    assert context["open_promises"][0]["promise_id"] == "p1"
    assert context["open_promises"][0]["seconds_left"] > 0
    # Much later: the promise broke and the feedback went unanswered (5 days).
    end = run(p, [event("e5", T0 + 7 * 24 * HOUR, "contact", "customer_service")], start=4)
    raised = alerts(end)
    broken, unanswered = raised["promise_broken"], raised["feedback_unanswered"]
    assert (broken["department"], unanswered["department"]) == ("maintenance", "billing")
    for alert in (broken, unanswered):
        raised_at = datetime.fromisoformat(alert["raised_at"])
        assert raised_at == datetime.fromisoformat(alert["effective_at"])
        assert datetime.fromisoformat(alert["act_by"]) - raised_at == 8 * HOUR
    stored = {row["alert_id"]: row for row in later.rows["alerts"] + end.rows["alerts"]}
    published = [orjson.loads(b)["alert_id"] for _, b in later.alerts + end.alerts]
    assert sorted(stored) == sorted(published)
    row = stored[broken["alert_id"]]
    assert orjson.loads(row["alert"]) == broken and row["_offset"] == 4


def test_the_context_stays_small_whatever_the_events_hold() -> None:
    from pipeline.journey import JourneyBook, add
    from pipeline.stream.alert_context import TEXT_CHARS, TOLD_US, journey_context

    model = load_score_model()
    touchpoints = [
        Touchpoint(event_id=f"e{n}", occurred_at=T0 + n * HOUR, customer_id="c1",
                   journey_id="J1", department="customer_service", type="contact",
                   attributes={"reason": f"reason {n} " + "x" * 60_000, "resolved": False})
        for n in range(60)
    ]  # fmt: skip
    book = JourneyBook.for_touchpoint(touchpoints[0])
    for touchpoint in touchpoints:
        add(book, touchpoint, model)
    context = journey_context(book, "J1", T0 + 60 * HOUR)
    assert len(orjson.dumps(context)) < 20_000
    told = context["already_told_us"]
    assert len(told) == TOLD_US and told[-1].startswith("reason 59 ")
    assert all(len(reason) == TEXT_CHARS for reason in told)
    assert len(context["timeline"]) == 20 and context["touchpoint_count"] == 60
