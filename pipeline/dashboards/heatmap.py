"""Journey heatmap (leadership): where in the company experience points are lost."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from pipeline.dashboards.common import (
    MODEL,
    bar_panel,
    matrix_heatmap_panel,
    model_variable,
    new_dashboard,
    stat_panel,
    timeseries_panel,
)

UID = "journeys-heatmap"

# signal_day_cells: active signals per day x department x stage x signal, refreshed every
# five minutes (migration 0004); a month of cells is a few thousand rows.
_CELLS_IN_RANGE = f"""FROM signal_day_cells
WHERE model_version = {MODEL} AND $__dateFilter(day) AND points_lost > 0"""

# journey_cell_days: per day x department x stage, the journeys that lost points there,
# grouped by the previous day each lost points in the same cell (migration 0005). A journey
# counts once in a range: on its first losing day there, the row whose previous day lies
# before the range. Refreshed every five minutes, lost points included.
_JOURNEY_CELLS_IN_RANGE = f"""FROM journey_cell_days
WHERE model_version = {MODEL} AND $__dateFilter(day)"""
_FIRST_IN_RANGE = "previous_day < toDate($__fromTime)"

LOST_POINTS_HEATMAP = f"""
SELECT department, stage, round(sum(points_lost), 1) AS lost_points,
       sumIf(journeys, {_FIRST_IN_RANGE}) AS journeys_affected
{_JOURNEY_CELLS_IN_RANGE}
GROUP BY department, stage
ORDER BY lost_points DESC, department, stage
"""

# journeys_active_blocks: uniq states of the journeys with a touchpoint in aligned blocks of
# 1, 2, 4, ..., 64 days, one per block, refreshed every five minutes (migration 0005). The
# range's whole days are covered by the blocks inside it whose parent block (twice as long)
# is not inside it.
_BLOCK_INSIDE = "{start} >= toDate($__fromTime) AND {start} + ({days} - 1) <= toDate($__toTime)"
_PARENT_START = "first_day - toUInt16(first_day) % (2 * span_days)"

JOURNEYS_AFFECTED_HEATMAP = f"""
WITH (
    SELECT greatest(uniqMerge(journeys), 1) FROM journeys_active_blocks
    WHERE {_BLOCK_INSIDE.format(start="first_day", days="span_days")}
      AND NOT (span_days < 64
               AND {_BLOCK_INSIDE.format(start=_PARENT_START, days="2 * span_days")})
) AS journeys_in_range
SELECT department, stage,
       round(100 * sumIf(journeys, {_FIRST_IN_RANGE}) / journeys_in_range, 2)
       AS journeys_affected_pct
{_JOURNEY_CELLS_IN_RANGE}
GROUP BY department, stage
ORDER BY journeys_affected_pct DESC, department, stage
"""

# journey_day_stats: journeys by start day x band x score decile, latest versions only,
# recomputed every minute (migration 0003).
_JOURNEYS_IN_RANGE = f"""FROM journey_day_stats
WHERE model_version = {MODEL} AND $__dateFilter(start_day)"""

AVERAGE_SCORE = f"""
SELECT toDateTime(start_day) AS time, round(sum(score_sum) / sum(journeys), 1) AS average_score
{_JOURNEYS_IN_RANGE}
GROUP BY time
ORDER BY time
"""

BEYOND_FRONT_DESK = f"""
SELECT if(sum(lost_points) = 0, 0,
          round(100 * sum(lost_points_beyond_front_desk) / sum(lost_points), 1))
       AS beyond_front_desk_pct
{_JOURNEYS_IN_RANGE}
"""

# 3 people hear of a good experience, 18 of a poor one (docs/concepts.md#word-of-mouth).
WORD_OF_MOUTH = f"""
SELECT toInt64(3 * sumIf(journeys, band = 'good')) - toInt64(18 * sumIf(journeys, band = 'poor'))
       AS word_of_mouth_balance
{_JOURNEYS_IN_RANGE}
"""

TOP_BREAKDOWNS = f"""
SELECT concat(signal, ' · ', department) AS breakdown, round(sum(points_lost), 1) AS lost_points
{_CELLS_IN_RANGE}
GROUP BY breakdown
ORDER BY lost_points DESC, breakdown
LIMIT 10
"""

SCORE_DISTRIBUTION = f"""
SELECT concat(toString(score_decile), '-', toString(score_decile + 10)) AS score_range,
       sum(journeys) AS journeys
{_JOURNEYS_IN_RANGE}
GROUP BY score_decile
ORDER BY score_decile
"""


def build() -> dash.Dashboard:
    return (
        new_dashboard(
            UID,
            "Journeys: heatmap",
            "Leadership: where experience points are lost, by department and journey stage.",
            "now-30d",
        )
        .refresh("5m")
        .with_variable(model_variable())
        .with_panel(
            matrix_heatmap_panel(
                "Lost points: department x stage",
                "Experience points lost (sum of negative signal impacts) per responsible "
                "department and journey stage (whole days, up to 5 minutes behind); the darkest "
                "cell loses most.",
                LOST_POINTS_HEATMAP,
                rows="department",
                columns="stage",
                value="lost_points",
                unit="short",
            )
        )
        .with_panel(
            matrix_heatmap_panel(
                "Share of journeys affected: department x stage",
                "Percent of the journeys active in the range that lost points at this "
                "department and stage.",
                JOURNEYS_AFFECTED_HEATMAP,
                rows="department",
                columns="stage",
                value="journeys_affected_pct",
                unit="percent",
            )
        )
        .with_panel(
            timeseries_panel(
                "Average journey score",
                "Average score (0-100) of the journeys started each day, latest version.",
                AVERAGE_SCORE,
            )
        )
        .with_panel(
            stat_panel(
                "Lost beyond the front desk",
                "Share of lost points attributed to departments outside the front desk.",
                BEYOND_FRONT_DESK,
                unit="percent",
            )
        )
        .with_panel(
            stat_panel(
                "Word-of-mouth balance",
                "3 x good journeys - 18 x poor journeys started in the range: net stories told.",
                WORD_OF_MOUTH,
            )
        )
        .with_panel(
            bar_panel(
                "Top breakdowns",
                "The ten signal kinds x departments that lost the most points.",
                TOP_BREAKDOWNS,
            )
        )
        .with_panel(
            bar_panel(
                "Score distribution",
                "Journeys started in the range by score decile (90-100 includes 100).",
                SCORE_DISTRIBUTION,
            )
        )
    )
