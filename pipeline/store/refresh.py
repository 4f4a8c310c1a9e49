"""Refresh the scheduled aggregates now, instead of at their next scheduled run.

Migrations 0003 to 0005 create these refreshable materialized views; ClickHouse refreshes
them on its own (every minute; the heatmap's cells and the active-journey blocks every five).
Whoever has just loaded rows and wants the panels to show them at once (the dashboard tests,
the benchmarks, someone loading data by hand) calls `refresh_now`.
"""

from __future__ import annotations

from pipeline.store.base import Store

REFRESHED_VIEWS = (
    "journey_day_stats_mv",
    "open_promises_mv",
    "resolution_times_mv",
    "signal_day_cells_mv",
    "journey_cell_days_mv",
    "journeys_active_blocks_mv",
)


def refresh_now(store: Store) -> None:
    """Refresh every view, then wait for all of them: the refreshes run side by side."""
    for view in REFRESHED_VIEWS:
        store.execute(f"SYSTEM REFRESH VIEW {view}")
    for view in REFRESHED_VIEWS:
        store.execute(f"SYSTEM WAIT VIEW {view}")
