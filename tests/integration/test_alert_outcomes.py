"""Did the loop close? The `alert_outcomes` view (migration 0008) on a hand-built case: one
alert acted on in time, one too late, one never, one still open; exact figures, on chdb
and on the server path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

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
