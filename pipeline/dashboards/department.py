"""Department drill-down: one department's signals, promises, resolution times, worst journeys."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from pipeline.dashboards.common import (
    MODEL,
    bar_panel,
    explorer_link,
    model_variable,
    new_dashboard,
    query_variable,
    stat_panel,
    table_panel,
    text_var,
)

UID = "journeys-department"
DEPARTMENT = text_var("department")

DEPARTMENTS = """
SELECT DISTINCT department
FROM touchpoints_per_hour
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
ORDER BY department
"""

# signals_by_department (migration 0005): the department's signals, kind by kind, are key
# ranges of hours; FINAL resolves replays and retractions.
_SIGNALS = f"""FROM signals_by_department FINAL
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime AND $__timeFilter(effective_at)
  AND active = 1 AND department = {DEPARTMENT} AND model_version = {MODEL}"""

POINTS_BY_SIGNAL = f"""
SELECT signal, round(sum(impact), 1) AS points, count() AS signals
{_SIGNALS}
GROUP BY signal
ORDER BY points, signal
"""

# Per kind x stage. The example reason is the latest signal's (ties on effective_at go to the
# greatest signal_id): rather than argMax over a (time, id) tuple on every row, the latest
# moment of each cell is found with a plain max(), and the few rows at that moment are read
# back through the key (signal, hour) to pick the reason.
SIGNALS_BY_REASON_AND_STAGE = f"""
SELECT signal, stage, signals, points, journeys, example_reason
FROM (
    SELECT signal, stage, count() AS signals, round(sum(impact), 1) AS points,
           uniqExact(journey_id) AS journeys
    {_SIGNALS}
    GROUP BY signal, stage
) AS cells
LEFT JOIN (
    SELECT signal, stage, argMax(reason, signal_id) AS example_reason
    {_SIGNALS}
      AND (signal, stage, hour, effective_at) IN (
        SELECT signal, stage, toStartOfHour(max(effective_at)), max(effective_at)
        {_SIGNALS}
        GROUP BY signal, stage)
    GROUP BY signal, stage
) AS latest USING (signal, stage)
ORDER BY points, signal, stage
"""

PROMISE_KEPT_RATE = f"""
SELECT if(count() = 0, 0, round(100 * countIf(signal = 'promise_kept') / count(), 1))
       AS promise_kept_pct
{_SIGNALS}
  AND signal IN ('promise_kept', 'promise_kept_late', 'promise_broken')
"""

# resolution_times: one row per case or dispute, recomputed every minute (migration 0003).
TIME_TO_RESOLUTION = f"""
SELECT kind,
       countIf(resolved_at IS NOT NULL) AS resolved,
       countIf(resolved_at IS NULL) AS still_open,
       round(quantile(0.5)(hours), 1) AS median_hours,
       round(quantile(0.9)(hours), 1) AS p90_hours
FROM resolution_times
WHERE department = {DEPARTMENT} AND $__timeFilter(opened_at)
GROUP BY kind
ORDER BY kind
"""

# The 20 journeys with the lowest points in two steps: the totals per journey (the only
# per-journey work over the whole week), then the names of their kinds and their customer
# from those journeys' rows alone. The second step reads without FINAL so that journey_id
# can filter before the merge (FINAL filters after it and would read the week again), and
# resolves versions itself: per signal (the replacing key), the row of the highest version,
# then the same filters as FINAL applies. A signal keeps its journey, like its department,
# stage and hour.
WORST_JOURNEYS = f"""
SELECT latest.1 AS journey_id, any(latest.2) AS customer_id, round(sum(latest.3), 1) AS points,
       count() AS signals, arrayStringConcat(arraySort(groupUniqArray(signal)), ', ') AS kinds
FROM (
    SELECT signal, argMax((journey_id, customer_id, impact, effective_at, active), version)
                   AS latest
    FROM signals_by_department
    WHERE department = {DEPARTMENT} AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
      AND model_version = {MODEL} AND journey_id IN (
        SELECT journey_id
        {_SIGNALS}
        GROUP BY journey_id
        HAVING round(sum(impact), 1) < 0
        ORDER BY round(sum(impact), 1), journey_id
        LIMIT 20)
    GROUP BY department, signal, hour, stage, signal_id, model_version
)
WHERE latest.5 = 1 AND $__timeFilter(latest.4)
GROUP BY journey_id
ORDER BY points, journey_id
"""

# alert_outcomes (migration 0008): the department's alerts and whether it acted in time.
ALERTS_ACTED_ON = f"""
SELECT round(100 * countIf(outcome = 'in_time') / greatest(countIf(outcome != 'open'), 1), 1)
           AS acted_on_in_time_pct,
       round(quantileExactInclusive(0.5)(seconds_to_act) / 3600, 1) AS median_hours_to_act,
       count() AS alerts, countIf(outcome = 'late') AS late,
       countIf(outcome = 'not_acted') AS not_acted, countIf(outcome = 'open') AS still_open
FROM alert_outcomes
WHERE department = {DEPARTMENT} AND $__timeFilter(raised_at)
HAVING alerts > 0
"""


def build() -> dash.Dashboard:
    return (
        new_dashboard(
            UID,
            "Journeys: department",
            "One department: its signals by kind and stage, promises, resolution times and "
            "the journeys it hurt most.",
            "now-7d",
        )
        .refresh("1m")
        .with_variable(query_variable("department", "Department", DEPARTMENTS))
        .with_variable(model_variable())
        .with_panel(
            bar_panel(
                "Points by signal",
                "Points gained (+) and lost (-) by the department, per signal kind.",
                POINTS_BY_SIGNAL,
                width=9,
            )
        )
        .with_panel(
            stat_panel(
                "Promise kept rate",
                "Promises kept on time / all promise outcomes (kept, kept late, broken).",
                PROMISE_KEPT_RATE,
                unit="percent",
                width=5,
            )
        )
        .with_panel(
            table_panel(
                "Time to resolution",
                "Cases and billing disputes the department opened in the range: resolved, "
                "still open, median and 90th percentile hours to resolution.",
                TIME_TO_RESOLUTION,
                width=10,
            )
        )
        .with_panel(
            table_panel(
                "Alerts acted on in time",
                "The department's alerts raised in the range: the share acted on before the "
                "alert's deadline (a proactive update, a promise kept, feedback answered or a "
                "resolution in the journey), the median hours to act, and the alerts acted on "
                "late, not at all, or still open.",
                ALERTS_ACTED_ON,
                width=24,
            )
        )
        .with_panel(
            table_panel(
                "Signals by reason and stage",
                "Every signal kind x stage for the department, with an example reason.",
                SIGNALS_BY_REASON_AND_STAGE,
            )
        )
        .with_panel(
            table_panel(
                "Worst journeys",
                "The 20 journeys where the department lost the most points; click a row to "
                "open the journey explorer.",
                WORST_JOURNEYS,
            ).data_links([explorer_link()])
        )
    )
