"""Did the loop close? The `alert_outcomes` view (migration 0008) on a hand-built case: one
alert acted on in time, one too late, one never, one still open; exact figures, on chdb
and on the server path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.report import ReportFilter, load_report, summary_lines
from pipeline.report.loop import load_loop_closure, loop_closure_html
from pipeline.store import Store
from pipeline.stream.rows import Position, alert_message, alert_row

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AT = Position("journeys.alerts", 0, 0, T0)


def alert(kind: str, journey: str, raised: datetime, act_by: datetime, dept: str) -> dict[str, Any]:
    body = {"journey_id": journey, "customer_id": f"c-{journey}", "ref": "r"}
    message = alert_message(kind, dept, body, raised_at=raised, act_by=act_by, context={})
    return alert_row(message, AT)


def touchpoint(journey: str, kind: str, at: datetime, **attributes: Any) -> dict[str, Any]:
    return {
        "event_id": f"{journey}-{kind}-{at.isoformat()}",
        "occurred_at": at,
        "customer_id": f"c-{journey}",
        "journey_id": journey,
        "department": "maintenance",
        "stage": "service",
        "channel": "phone",
        "type": kind,
        "attributes": orjson.dumps(attributes).decode(),
    } | AT.provenance()


@pytest.fixture(params=["embedded", "server"])
def any_store(request: pytest.FixtureRequest) -> Store:
    store: Store = request.getfixturevalue("fresh_store" if request.param == "embedded"
                                           else "server_store")  # fmt: skip
    return store


def test_loop_closure_figures_on_a_hand_built_case(any_store: Store) -> None:
    day = timedelta(days=1)
    far = datetime.now(UTC) + 30 * day
    any_store.insert("alerts", [
        # j1: promise due in 24 h, kept after 2 h: in time.
        alert("promise_due_soon", "j1", T0, T0 + day, "maintenance"),
        # j2: promise broken; the company told the customer after 30 h (act_by 24 h): late.
        alert("promise_broken", "j2", T0, T0 + day, "maintenance"),
        # j3: feedback unanswered; nothing happened after the alert: never acted on.
        alert("feedback_unanswered", "j3", T0, T0 + day, "maintenance"),
        # j4: billing, deadline still ahead and no action yet: open, not in the share.
        alert("journey_turned_poor", "j4", T0, far, "billing"),
        # The worker raised j1's alert again after a restart: counted once.
        alert("promise_due_soon", "j1", T0, T0 + day, "maintenance"),
    ])  # fmt: skip
    any_store.insert("touchpoints", [
        touchpoint("j1", "promise_kept", T0 + timedelta(hours=2), promise_id="p1"),
        touchpoint("j2", "contact", T0 + timedelta(hours=1), resolved=False),  # no action
        touchpoint("j2", "proactive_update", T0 + timedelta(hours=30), about="visit"),
        touchpoint("j3", "feedback_answered", T0 - timedelta(hours=1), feedback_id="f0"),
        touchpoint("j3", "contact", T0 + timedelta(hours=3), resolved=False),
    ])  # fmt: skip
    outcomes = {
        row["journey_id"]: (row["outcome"], row["seconds_to_act"])
        for row in any_store.query("SELECT * FROM alert_outcomes")
    }
    assert outcomes == {
        "j1": ("in_time", 7200.0),
        "j2": ("late", 108_000.0),
        "j3": ("not_acted", None),
        "j4": ("open", None),
    }
    rows = {r.department: r for r in load_loop_closure(any_store, ReportFilter().params())}
    maintenance = rows["maintenance"]
    assert (maintenance.alerts, maintenance.in_time, maintenance.late) == (3, 1, 1)
    assert (maintenance.not_acted, maintenance.open) == (1, 0)
    assert maintenance.share_in_time == pytest.approx(1 / 3)
    assert maintenance.median_seconds_to_act == pytest.approx((7200 + 108_000) / 2)
    billing = rows["billing"]
    assert (billing.alerts, billing.open, billing.share_in_time) == (1, 1, None)
    assert billing.median_seconds_to_act is None
    data = load_report(any_store, ReportFilter())
    assert summary_lines(data)[-1] == (
        "alerts acted on in time (median time to act): billing - of 0 (-), "
        "maintenance 33% of 3 (16.0 h)"
    )
    html = loop_closure_html(list(rows.values()))
    assert "<td>maintenance</td><td class='num'>3</td><td class='num'>33%</td>" in html
    assert "<td class='num'>16.0 h</td>" in html  # the median of 2 h and 30 h


ACTIONS = ("proactive_update", "promise_kept", "feedback_answered", "case_resolved",
           "billing_dispute_resolved")  # fmt: skip
OTHERS = ("contact", "handoff", "promise_made", "rework")
minutes = st.integers(0, 72 * 60)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    alerts=st.lists(st.tuples(st.integers(0, 3), minutes, st.integers(1, 48 * 60)), max_size=6),
    events=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(ACTIONS + OTHERS), minutes, st.booleans()),
        max_size=12,
    ),
)
def test_outcomes_match_their_definition_on_random_cases(
    fresh_store: Store,
    alerts: list[tuple[int, int, int]],
    events: list[tuple[int, str, int, bool]],
) -> None:
    """The view against the rule in words (docs/departments.md#did-the-loop-close): the
    first action in the journey at or after raised_at; in time when by act_by. The alerts
    name another customer id than the events: a journey is matched by its id alone."""
    fresh_store.execute("TRUNCATE TABLE alerts")
    fresh_store.execute("TRUNCATE TABLE touchpoints")
    minute = timedelta(minutes=1)
    alert_rows = [
        alert("promise_broken", f"j{j}", T0 + raised * minute, T0 + (raised + span) * minute,
              "maintenance") | {"alert_id": f"a{n}", "customer_id": "another-id"}
        for n, (j, raised, span) in enumerate(alerts)
    ]  # fmt: skip
    rows = [touchpoint(f"j{j}", kind, T0 + at * minute, resolved=resolved) | {"event_id": f"e{n}"}
            for n, (j, kind, at, resolved) in enumerate(events)]  # fmt: skip
    if alert_rows:
        fresh_store.insert("alerts", alert_rows)
    if rows:
        fresh_store.insert("touchpoints", rows)
    expected = {}
    for n, (j, raised, span) in enumerate(alerts):
        acts = [at for (k, kind, at, resolved) in events if k == j and at >= raised
                and (kind in ACTIONS or (kind == "contact" and resolved))]  # fmt: skip
        first = min(acts, default=None)
        if first is None:
            expected[f"a{n}"] = ("not_acted", None)
        else:
            outcome = "in_time" if first <= raised + span else "late"
            expected[f"a{n}"] = (outcome, float((first - raised) * 60))
    found = {r["alert_id"]: (r["outcome"], r["seconds_to_act"])
             for r in fresh_store.query("SELECT * FROM alert_outcomes")}  # fmt: skip
    assert found == expected
