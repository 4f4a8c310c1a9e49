"""Department drill-down: one department's signals, promises, resolution times, worst journeys."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from pipeline.dashboards.common import (
    bar_panel,
    explorer_link,
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
  AND active = 1 AND department = {DEPARTMENT}"""

POINTS_BY_SIGNAL = f"""
SELECT signal, round(sum(impact), 1) AS points, count() AS signals
{_SIGNALS}
GROUP BY signal
ORDER BY points, signal
"""

SIGNALS_BY_REASON_AND_STAGE = f"""
SELECT signal, stage, count() AS signals, round(sum(impact), 1) AS points,
       uniqExact(journey_id) AS journeys,
       argMax(reason, (effective_at, signal_id)) AS example_reason
{_SIGNALS}
GROUP BY signal, stage
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

WORST_JOURNEYS = f"""
SELECT journey_id, any(customer_id) AS customer_id, round(sum(impact), 1) AS points,
       count() AS signals, arrayStringConcat(arraySort(groupUniqArray(signal)), ', ') AS kinds
{_SIGNALS}
GROUP BY journey_id
HAVING points < 0
ORDER BY points, journey_id
LIMIT 20
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
