"""The simulated company: reproducible, contract-shaped, with the planted breakdown on top."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pipeline.contract import CHANNELS, EVENT_TYPES
from pipeline.simulate import (
    FAILURE_KINDS,
    SimulationConfig,
    SimulationConfigError,
    parse_breakdowns,
    simulate,
)

START = datetime(2026, 3, 1, tzinfo=UTC)
SLUG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CLEAN = {"late_share": 0.0, "out_of_order_share": 0.0, "duplicate_share": 0.0}


def config(**overrides: object) -> SimulationConfig:
    values: dict[str, object] = {"customers": 200, "days": 30, "seed": 11, "start": START}
    values.update(overrides)
    return SimulationConfig(**values)  # type: ignore[arg-type]


def decoded(cfg: SimulationConfig) -> list[dict[str, object]]:
    deliveries, _ = simulate(cfg)
    return [orjson.loads(d.value) for d in deliveries]


def test_same_seed_same_traffic_other_seed_other_traffic() -> None:
    first, _ = simulate(config())
    again, _ = simulate(config())
    other, _ = simulate(config(seed=12))
    assert [d.value for d in first] == [d.value for d in again]
    assert [d.value for d in first] != [d.value for d in other]


def test_a_customer_keeps_their_story_when_the_company_grows() -> None:
    small = [e for e in decoded(config(customers=20, **CLEAN, malformed_share=0.0))]
    large = decoded(config(customers=60, **CLEAN, malformed_share=0.0))
    first_customer = [e for e in large if e["customer_id"] == "CUST-0000001"]
    assert first_customer == [e for e in small if e["customer_id"] == "CUST-0000001"]


def test_every_good_event_follows_the_contract() -> None:
    events = decoded(config(malformed_share=0.0))
    assert len(events) > 1000
    for event in events:
        assert SLUG.match(str(event["department"]))
        assert event["type"] in EVENT_TYPES
        assert event.get("channel", "phone") in CHANNELS
        occurred_at = datetime.fromisoformat(str(event["occurred_at"]))
        assert occurred_at.utcoffset() == timedelta(0)
        assert 1 <= len(str(event["event_id"])) <= 128
        attributes = event.get("attributes", {})
        assert isinstance(attributes, dict)
        if event["type"] == "promise_made":
            assert {"promise_id", "due_at"} <= attributes.keys()
        if event["type"] == "handoff":
            assert "to_department" in attributes


def test_nothing_happens_after_the_period() -> None:
    cfg = config(days=5, malformed_share=0.0)
    events = decoded(cfg)
    assert max(datetime.fromisoformat(str(e["occurred_at"])) for e in events) <= cfg.end
    assert min(datetime.fromisoformat(str(e["occurred_at"])) for e in events) >= cfg.start


def test_journeys_cross_departments_and_stages() -> None:
    events = decoded(config(malformed_share=0.0))
    departments = {e["department"] for e in events}
    stages = {e.get("stage") for e in events}
    assert {"sales", "customer_service", "maintenance", "billing", "delivery"} <= departments
    assert {"purchase", "delivery", "onboarding", "service", "billing", "renewal"} <= stages
    by_journey = Counter(
        (e.get("journey_id"), e["department"]) for e in events if e.get("journey_id")
    )
    departments_per_journey = Counter(journey for journey, _ in by_journey)
    assert max(departments_per_journey.values()) >= 3


def test_surveys_answer_a_minority_of_journeys() -> None:
    _, summary = simulate(config(survey_share=0.2))
    assert 0.1 * summary.journeys < summary.surveys < 0.3 * summary.journeys


def test_the_planted_breakdown_dominates_and_is_reported_first() -> None:
    _, summary = simulate(config(breakdowns=parse_breakdowns(["billing-renewal"])))
    top = summary.planted[0]
    assert (top.department, top.stage) == ("billing", "renewal")
    assert top.journeys > 3 * max(
        n for kind, n in summary.failures.items() if kind != "renewal_invoice"
    )
    assert "billing corrects invoices at renewal" in "\n".join(summary.lines())


def test_a_broken_visit_promise_has_no_kept_event() -> None:
    events = decoded(config(**CLEAN, malformed_share=0.0, baseline=0.0))
    made = {
        e["attributes"]["promise_id"]  # type: ignore[index]
        for e in events
        if e["type"] == "promise_made" and e["department"] == "maintenance"
    }
    kept = {e["attributes"]["promise_id"] for e in events if e["type"] == "promise_kept"}  # type: ignore[index]
    missed = sum(1 for e in events if e["type"] == "appointment_missed")
    assert len(made - kept) == missed > 0


def test_no_breakdown_and_no_baseline_plants_nothing() -> None:
    _, summary = simulate(config(breakdowns={}, baseline=0.0))
    assert sum(summary.failures.values()) == 0
    assert summary.planted == []


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"customers": 0}, "customers"),
        ({"days": 0}, "days"),
        ({"start": datetime(2026, 3, 1)}, "start"),  # noqa: DTZ001 - the naive value under test
        ({"late_share": 1.5}, "late_share"),
        ({"breakdowns": {"teleport": 0.5}}, "teleport"),
        ({"breakdowns": {"visit_promise": -0.1}}, "visit_promise"),
    ],
)
def test_bad_settings_name_the_setting(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(SimulationConfigError, match=named):
        config(**overrides)


def test_breakdown_specs_parse_presets_and_kinds() -> None:
    assert parse_breakdowns(["maintenance-visits", "invoice_error=0.2"]) == {
        "visit_promise": 0.45,
        "invoice_error": 0.2,
    }
    with pytest.raises(SimulationConfigError, match="'lots'"):
        parse_breakdowns(["invoice_error=lots"])
    assert all(kind.department and kind.stage for kind in FAILURE_KINDS.values())


def test_the_summary_says_how_many_journeys_the_pipeline_will_find_and_why() -> None:
    """The demo once said 3,416 journeys simulated and 3,388 found, and nothing about why."""
    from pipeline.journey import load_score_model
    from pipeline.stream.offline import offline_rows

    cfg = config(customers=400)
    deliveries, summary = simulate(cfg)
    rows = offline_rows(((d.value, cfg.end) for d in deliveries), cfg.end, load_score_model())
    final: dict[str, dict[str, object]] = {}  # each journey's row of highest version, as FINAL
    for row in rows["journeys"]:
        if row["version"] >= final.get(row["journey_id"], row)["version"]:
            final[row["journey_id"]] = row
    found = sum(1 for row in final.values() if not row.get("is_deleted"))
    assert summary.journeys_found == found < summary.journeys
    line = summary.lines()[1]
    assert line.startswith(f"{found:,} of them as the pipeline counts journeys: ")
    assert f"{summary.journeys - found:,} have no journey_id and continue" in line
