"""Refresh the scheduled aggregates (0003, 0004, 0005) now, instead of at their next minute.

ClickHouse refreshes them on its own (every minute; the heatmap cells every five); tests,
the demo and anyone who has just loaded data call `refresh_now` to see the panels at once.
"""

from __future__ import annotations

from pipeline.store import Store

REFRESHED_VIEWS = (
    "journey_day_stats_mv",
    "open_promises_mv",
    "resolution_times_mv",
    "signal_day_cells_mv",
    "journey_cell_days_mv",
    "journeys_active_blocks_mv",
)


def refresh_now(store: Store) -> None:
    for view in REFRESHED_VIEWS:
        store.execute(f"SYSTEM REFRESH VIEW {view}")
    for view in REFRESHED_VIEWS:
        store.execute(f"SYSTEM WAIT VIEW {view}")
