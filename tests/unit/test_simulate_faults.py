"""Delivery faults: counted as planted, and shaped the way they are meant to be."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pipeline.simulate import Pacer, SimulationConfig, simulate
from pipeline.simulate.faults import UNREADABLE, break_event

START = datetime(2026, 3, 1, tzinfo=UTC)


def test_no_faults_means_every_event_once_in_event_time_order() -> None:
    cfg = SimulationConfig(
        customers=100,
        start=START,
        late_share=0,
        out_of_order_share=0,
        duplicate_share=0,
        malformed_share=0,
    )
    deliveries, summary = simulate(cfg)
    events = [orjson.loads(d.value) for d in deliveries]
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    assert len({e["event_id"] for e in events}) == len(events) == summary.events
    assert all(d.key == (e.get("journey_id") or e["customer_id"]).encode() for d, e in
               zip(deliveries, events, strict=True))  # fmt: skip


def test_duplicates_are_byte_identical_resends_and_counted() -> None:
    cfg = SimulationConfig(customers=300, start=START, duplicate_share=0.1, malformed_share=0)
    deliveries, summary = simulate(cfg)
    resent = Counter(d.value for d in deliveries)
    assert sum(n - 1 for n in resent.values()) == summary.faults.duplicates
    assert 0.07 * summary.events < summary.faults.duplicates < 0.13 * summary.events
    assert summary.messages == summary.events + summary.faults.duplicates


def test_late_and_out_of_order_events_arrive_after_later_events() -> None:
    cfg = SimulationConfig(
        customers=300, start=START, late_share=0.05, out_of_order_share=0.1, malformed_share=0
    )
    deliveries, summary = simulate(cfg)
    times = [datetime.fromisoformat(orjson.loads(d.value)["occurred_at"]) for d in deliveries]
    newest, overtaken = times[0], 0
    for occurred_at in times:
        overtaken += occurred_at < newest - timedelta(minutes=1)
        newest = max(newest, occurred_at)
    assert summary.faults.late > 0 and summary.faults.out_of_order > 0
    assert overtaken >= 0.5 * (summary.faults.late + summary.faults.out_of_order)


def test_malformed_messages_are_extra_and_counted_per_department() -> None:
    cfg = SimulationConfig(customers=300, start=START, malformed_share=0.05, duplicate_share=0)
    _, summary = simulate(cfg)
    faults = summary.faults
    assert faults.malformed == round(0.05 * summary.events)
    assert sum(faults.malformed_by_department.values()) == faults.malformed
    assert sum(faults.malformed_by_reason.values()) == faults.malformed
    # The buggy department's system sends more than its share of broken messages.
    assert faults.malformed_by_department.most_common(1)[0][0] in ("delivery", UNREADABLE)
    assert summary.messages == summary.events + faults.malformed


@pytest.mark.parametrize("seed", range(40))
def test_each_broken_event_breaks_the_contract_in_its_stated_way(seed: int) -> None:
    event = {
        "event_id": "e1",
        "occurred_at": "2026-03-01T10:00:00.000+00:00",
        "customer_id": "C1",
        "department": "field_service",
        "type": "contact",
    }
    reason, department, raw = break_event(event, random.Random(seed))
    if reason == "not_json":
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        assert department == UNREADABLE
        return
    broken = orjson.loads(raw)
    assert broken["event_id"] != "e1"
    expectations = {
        "naive_timestamp": lambda: datetime.fromisoformat(broken["occurred_at"]).tzinfo is None,
        "unknown_type": lambda: broken["type"] == "complaint_logged",
        "missing_customer_id": lambda: "customer_id" not in broken,
        "bad_department": lambda: broken["department"] == department == "Field Service!",
    }
    assert expectations[reason]()


def test_pacer_at_a_rate_and_at_a_speed_up() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    by_rate = Pacer(rate=100, clock=lambda: now[0], sleep=sleep)
    for i in range(201):
        by_rate.wait_for(i, START)
    assert now[0] == pytest.approx(2.0)

    now[0], slept[:] = 0.0, []
    by_speed = Pacer(speed=3600, clock=lambda: now[0], sleep=sleep)
    by_speed.wait_for(0, START)
    by_speed.wait_for(1, START + timedelta(hours=2))
    assert now[0] == pytest.approx(2.0)

    flat_out = Pacer(clock=lambda: 0.0, sleep=sleep)
    slept[:] = []
    flat_out.wait_for(10_000, START + timedelta(days=30))
    assert slept == []
    with pytest.raises(ValueError, match="rate"):
        Pacer(rate=0)
