"""Operations (live): what breaks now, which promises are about to break, who is at risk."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from pipeline.dashboards.common import (
    MODEL,
    bar_panel,
    custom_variable,
    explorer_link,
    model_variable,
    new_dashboard,
    table_panel,
    text_var,
    timeseries_panel,
)

UID = "journeys-operations"

# Minute states for short ranges, hour states once Grafana's interval reaches an hour (the
# other branch's constant-false WHERE reads nothing), bucketed by the interval so a month is
# hundreds of points, not tens of thousands.
TOUCHPOINTS_PER_MINUTE = """
SELECT time, department,
       round(touchpoints / (greatest($__interval_s, 60) / 60), 2) AS touchpoints_per_minute
FROM (
    SELECT toStartOfInterval(minute, toIntervalSecond(greatest($__interval_s, 60))) AS time,
           department, uniqMerge(events) AS touchpoints
    FROM touchpoints_per_minute
    WHERE minute >= toStartOfMinute($__fromTime) AND minute <= $__toTime
      AND $__interval_s < 3600
    GROUP BY time, department
    UNION ALL
    SELECT toStartOfInterval(hour, toIntervalSecond($__interval_s)) AS time,
           department, uniqMerge(events) AS touchpoints
    FROM touchpoints_per_hour
    WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
      AND $__interval_s >= 3600
    GROUP BY time, department
)
ORDER BY time, department
"""

# open_promises: made, not kept, recomputed every minute (migration 0003).
PROMISES_DUE = f"""
SELECT department, count() AS promises_due
FROM open_promises
WHERE due_at >= now()
  AND due_at < now() + toIntervalHour(toUInt32OrZero({text_var("due_within_hours")}))
GROUP BY department
ORDER BY promises_due DESC, department
"""

# signals_by_department (migration 0005): ordered department, signal, hour, so one kind of
# signal over a day is a short key range per department.
BROKEN_PROMISES_24H = f"""
SELECT department, count() AS broken_promises
FROM signals_by_department FINAL
WHERE hour >= toStartOfHour(now() - INTERVAL 24 HOUR)
  AND effective_at >= now() - INTERVAL 24 HOUR
  AND signal = 'promise_broken' AND active = 1 AND model_version = {MODEL}
GROUP BY department
ORDER BY broken_promises DESC, department
"""

REPEAT_AND_LOST_CONTEXT = f"""
SELECT $__timeInterval(effective_at) AS time, signal, count() AS signals
FROM signals_by_department FINAL
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime AND $__timeFilter(effective_at)
  AND signal IN ('repeat_contact', 'context_lost') AND active = 1 AND model_version = {MODEL}
GROUP BY time, signal
ORDER BY time, signal
"""

REPEAT_AND_LOST_CONTEXT_BY_DEPARTMENT = f"""
SELECT department,
       countIf(signal = 'repeat_contact') AS repeat_contacts,
       countIf(signal = 'context_lost') AS lost_context_handoffs
FROM signals_by_department FINAL
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime AND $__timeFilter(effective_at)
  AND signal IN ('repeat_contact', 'context_lost') AND active = 1 AND model_version = {MODEL}
GROUP BY department
ORDER BY repeat_contacts + lost_context_handoffs DESC, department
"""

# A journey that first turned poor in the last hour has a poor snapshot in the last hour:
# recent_journey_snapshots (migration 0005: a day of snapshots, ordered band, time) names
# those few candidates, journey_band_entries says whether that was their first time, and
# their latest version is among their snapshots of the hour: the worker's event-time clock
# only moves forward, so a snapshot that outranks one of the last hour is from the hour too
# (a replay after a crash that lost over an hour of progress can break that for a while).
TURNED_POOR = f"""
WITH candidates AS (
    SELECT DISTINCT journey_id
    FROM recent_journey_snapshots
    WHERE band = 'poor' AND at >= now() - INTERVAL 1 HOUR AND model_version = {MODEL}
),
turned AS (
    SELECT journey_id, toDateTime64(min(first_at), 3, 'UTC') AS turned_poor_at
    FROM journey_band_entries
    WHERE band = 'poor' AND journey_id IN candidates AND model_version = {MODEL}
    GROUP BY journey_id
    HAVING turned_poor_at >= now() - INTERVAL 1 HOUR
)
SELECT turned.turned_poor_at AS turned_poor_at, turned.journey_id AS journey_id,
       latest.customer_id AS customer_id, latest.score AS score,
       latest.worst_department AS worst_department, latest.worst_stage AS worst_stage,
       latest.lost_points AS lost_points
FROM turned
INNER JOIN (
    SELECT journey_id, argMax(customer_id, version) AS customer_id,
           argMax(score, version) AS score, argMax(band, version) AS band,
           argMax(status, version) AS status,
           argMax(worst_department, version) AS worst_department,
           argMax(worst_stage, version) AS worst_stage,
           argMax(lost_points, version) AS lost_points
    FROM recent_journey_snapshots
    WHERE at >= now() - INTERVAL 1 HOUR AND journey_id IN candidates
      AND model_version = {MODEL}
    GROUP BY journey_id
) AS latest ON latest.journey_id = turned.journey_id
WHERE latest.band = 'poor' AND latest.status != 'retired'
ORDER BY turned_poor_at DESC, journey_id
LIMIT 100
"""

# alert_outcomes (migration 0008): each alert and whether its journey saw an action (a
# proactive update, a promise kept, feedback answered, a resolution) by the alert's deadline.
# The share is of the alerts whose outcome is known: those still open are counted apart.
ALERTS_ACTED_ON = """
SELECT department, count() AS alerts,
       round(100 * countIf(outcome = 'in_time') / greatest(countIf(outcome != 'open'), 1), 1)
           AS acted_on_in_time_pct,
       round(quantileExactInclusive(0.5)(seconds_to_act) / 3600, 1) AS median_hours_to_act,
       countIf(outcome = 'late') AS late, countIf(outcome = 'not_acted') AS not_acted,
       countIf(outcome = 'open') AS still_open
FROM alert_outcomes
WHERE $__timeFilter(raised_at)
GROUP BY department
ORDER BY acted_on_in_time_pct, department
"""

REJECTIONS_PER_DEPARTMENT = """
SELECT hour AS time, if(department = '', '(unknown)', department) AS sender,
       uniqMerge(rejections) AS rejected_events
FROM rejections_per_hour
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
GROUP BY time, sender
ORDER BY time, sender
"""


def build() -> dash.Dashboard:
    return (
        new_dashboard(
            UID,
            "Journeys: operations",
            "Live: touchpoints, promises due and broken, repeat contacts, journeys turning poor.",
            "now-6h",
        )
        .refresh("10s")
        .with_variable(model_variable())
        .with_variable(
            custom_variable(
                "due_within_hours", "Promises due within (hours)", ["1", "4", "8", "24"], "4"
            )
        )
        .with_panel(
            timeseries_panel(
                "Touchpoints per minute by department",
                "Accepted touchpoints per minute of event time, each event counted once.",
                TOUCHPOINTS_PER_MINUTE,
                width=24,
            )
        )
        .with_panel(
            bar_panel(
                "Promises due soon by department",
                "Open promises (made, not kept) falling due within the chosen hours from now.",
                PROMISES_DUE,
            )
        )
        .with_panel(
            bar_panel(
                "Promises broken in the last 24 h by department",
                "promise_broken signals effective in the last 24 hours, by promising department.",
                BROKEN_PROMISES_24H,
            )
        )
        .with_panel(
            timeseries_panel(
                "Repeat contacts and lost-context handoffs",
                "Customers who had to explain again (repeat_contact) and handoffs that lost "
                "the context (context_lost), over time.",
                REPEAT_AND_LOST_CONTEXT,
            )
        )
        .with_panel(
            table_panel(
                "Repeat contacts and lost context by department",
                "The same signals over the time range, by responsible department.",
                REPEAT_AND_LOST_CONTEXT_BY_DEPARTMENT,
            )
        )
        .with_panel(
            table_panel(
                "Journeys that turned poor in the last hour",
                "Journeys whose score first fell into the poor band in the last hour and are "
                "still poor; click a row to open the journey explorer.",
                TURNED_POOR,
                width=16,
            ).data_links([explorer_link()])
        )
        .with_panel(
            table_panel(
                "Alerts acted on in time by department",
                "Alerts raised in the range (promises due soon or broken, feedback unanswered, "
                "journeys turned poor): the share acted on before the alert's deadline (a "
                "proactive update, a promise kept, feedback answered or a resolution in the "
                "journey), the median hours to act, and those late, not acted on, still open.",
                ALERTS_ACTED_ON,
                width=24,
            )
        )
        .with_panel(
            timeseries_panel(
                "Rejected events per department",
                "Messages rejected to the dead-letter topic per hour, by sending department "
                "((unknown) when the department could not be read).",
                REJECTIONS_PER_DEPARTMENT,
                width=8,
            )
        )
    )
