"""Journey explorer: one customer's journey as a timeline of touchpoints and signals."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from pipeline.dashboards.common import (
    MODEL,
    model_variable,
    new_dashboard,
    query_variable,
    stat_panel,
    table_panel,
    text_var,
    text_variable,
)

UID = "journeys-explorer"
CUSTOMER = text_var("customer")
JOURNEY = text_var("journey")

# touchpoints is ordered by (customer_id, journey_id, event_id): a primary-key range.
JOURNEYS_OF_CUSTOMER = f"""
SELECT DISTINCT journey_id
FROM touchpoints
WHERE customer_id = {CUSTOMER}
ORDER BY journey_id
"""

_LATEST = f"FROM journeys\nWHERE journey_id = {JOURNEY} AND model_version = {MODEL}"

SCORE = f"""
SELECT argMax(score, version) AS score
{_LATEST}
"""

LOST_POINTS = f"""
SELECT argMax(lost_points, version) AS lost_points
{_LATEST}
"""

SUMMARY = f"""
SELECT journey_id, argMax(customer_id, version) AS customer_id,
       argMax(band, version) AS band, argMax(status, version) AS status,
       argMax(started_at, version) AS started_at, argMax(last_event_at, version) AS last_event_at,
       argMax(touchpoint_count, version) AS touchpoints,
       argMax(worst_department, version) AS worst_department,
       argMax(score_model, version) AS score_model
{_LATEST}
GROUP BY journey_id
"""

# Touchpoints and the signals they led to, in one time line: each signal once, at the time
# it took effect, naming its evidence events.
TIMELINE = f"""
SELECT time, entry, what, department, stage, channel, impact, reason, event_ids
FROM (
    SELECT occurred_at AS time, 'touchpoint' AS entry, toString(type) AS what,
           toString(department) AS department, toString(stage) AS stage,
           toString(channel) AS channel, CAST(NULL, 'Nullable(Float64)') AS impact,
           '' AS reason, event_id AS event_ids
    FROM touchpoints FINAL
    WHERE customer_id = {CUSTOMER} AND journey_id = {JOURNEY}
    UNION ALL
    SELECT effective_at AS time, 'signal' AS entry, toString(signal) AS what,
           toString(department) AS department, toString(stage) AS stage, '' AS channel,
           CAST(impact, 'Nullable(Float64)') AS impact, reason,
           arrayStringConcat(evidence_event_ids, ', ') AS event_ids
    FROM journey_signals FINAL
    WHERE journey_id = {JOURNEY} AND model_version = {MODEL} AND active = 1
)
ORDER BY time, entry DESC, what
"""


def build() -> dash.Dashboard:
    return (
        new_dashboard(
            UID,
            "Journey explorer",
            "One journey of one customer: every touchpoint and every signal with its impact "
            "and reason.",
            "now-90d",
        )
        .with_variable(text_variable("customer", "Customer ID"))
        .with_variable(query_variable("journey", "Journey", JOURNEYS_OF_CUSTOMER))
        .with_variable(model_variable())
        .with_panel(stat_panel("Journey score", "Latest score (0-100).", SCORE, width=4))
        .with_panel(
            stat_panel("Lost points", "Points lost over the whole journey.", LOST_POINTS, width=4)
        )
        .with_panel(
            table_panel(
                "Journey",
                "Latest state of the journey: band, status, span, worst department, model.",
                SUMMARY,
                width=16,
                height=5,
            )
        )
        .with_panel(
            table_panel(
                "Timeline",
                "Touchpoints (type, department, stage, channel) and signals (kind, impact in "
                "points, reason, evidence event ids), in time order.",
                TIMELINE,
                width=24,
                height=16,
            )
        )
    )
