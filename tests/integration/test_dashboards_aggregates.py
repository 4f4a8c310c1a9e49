"""The aggregates the dashboards read stay correct under replays, and the heatmap finds the
department x stage that breaks most."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from pipeline.dashboards.heatmap import LOST_POINTS_HEATMAP
from pipeline.simulate import BREAKDOWN_PRESETS, FAILURE_KINDS, SimulationConfig, simulate
from pipeline.store.embedded import EmbeddedStore
from pipeline.store.refresh import refresh_now
from tests.support.dashboards.engine_rows import SimulatedMonth, pipeline_rows
from tests.support.dashboards.macros import QueryContext, expand
from tests.support.dashboards.queries import committed_queries
from tests.support.dashboards.sample import Sample, build_sample, insert_sample

AGGREGATES = [
    "touchpoints_per_minute", "touchpoints_per_hour", "touchpoints_ingested_per_minute",
    "rejections_per_hour", "signals_by_hour", "journey_day_stats", "journey_band_entries",
    "promises", "resolutions", "pipeline_metrics", "journeys", "signals_by_department",
    "journeys_active_block_parts", "recent_journey_snapshots", "accepted_per_hour",
    "journey_cell_days",
]  # fmt: skip


# Latency quantiles weigh every stored row, and a replay stores rows again (that storing is
# what the panel measures); only its max is idempotent, so only the max is compared.
WEIGHS_EVERY_STORE = "journeys-pipeline / Event-to-stored latency"


QUERIES = committed_queries()


def answers(store: EmbeddedStore, context: QueryContext) -> dict[str, Any]:
    found = {query.name: store.query(expand(query.sql, context)) for query in QUERIES}
    found[WEIGHS_EVERY_STORE] = [(r["time"], r["max"]) for r in found[WEIGHS_EVERY_STORE]]
    return found


def replayed(sample: Sample) -> Sample:
    """The same rows in reverse order, so batches split them at other boundaries."""
    return Sample(**{table: rows[::-1] for table, rows in sample.tables().items()})


def test_replayed_rows_in_other_batches_change_no_panel_answer(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    sample, context = simulated_month.sample, simulated_month.context
    insert_sample(fresh_store, sample, batch=1000)
    before = answers(fresh_store, context)
    assert any(before.values())

    insert_sample(fresh_store, replayed(sample), batch=777)
    assert answers(fresh_store, context) == before

    # ...and still after ClickHouse merged the parts (states folded, versions replaced).
    for table in AGGREGATES:
        fresh_store.execute(f"OPTIMIZE TABLE {table} FINAL")
    refresh_now(fresh_store)
    assert answers(fresh_store, context) == before


def test_a_retracted_signal_leaves_the_heatmap(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    context = simulated_month.context
    sample = build_sample(simulated_month.now, journeys=40)
    insert_sample(fresh_store, sample, batch=500)
    before = {(r["department"], r["stage"]): r["lost_points"]
              for r in fresh_store.query(expand(LOST_POINTS_HEATMAP, context))}  # fmt: skip
    signal = next(s for s in sample.journey_signals if s["impact"] < 0)
    fresh_store.insert(
        "journey_signals", [{**signal, "active": 0, "version": signal["version"] + 1}]
    )
    refresh_now(fresh_store)
    after = {(r["department"], r["stage"]): r["lost_points"]
             for r in fresh_store.query(expand(LOST_POINTS_HEATMAP, context))}  # fmt: skip
    cell = (signal["department"], signal["stage"])
    assert after.get(cell, 0) == pytest.approx(before[cell] + signal["impact"])


def test_a_journey_whose_start_moved_earlier_counts_once_on_its_true_day(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    from pipeline.dashboards.heatmap import SCORE_DISTRIBUTION

    first = next(row for row in simulated_month.sample.journeys if row["band"] == "good")
    late_start = first["started_at"] - timedelta(days=2)
    fresh_store.insert("journeys", [first])
    fresh_store.insert(
        "journeys", [{**first, "started_at": late_start, "version": first["version"] + 1}]
    )
    refresh_now(fresh_store)

    def journeys_counted(days_back_from: int, days_back_to: int) -> int:
        context = replace(simulated_month.context,
                          time_from=first["started_at"] - timedelta(days=days_back_from),
                          time_to=first["started_at"] - timedelta(days=days_back_to))  # fmt: skip
        return sum(r["journeys"] for r in fresh_store.query(expand(SCORE_DISTRIBUTION, context)))

    assert journeys_counted(0, 0) == 0  # the stale snapshot's day
    assert journeys_counted(2, 2) == 1  # the true start day
    assert journeys_counted(3, 0) == 1


@pytest.mark.parametrize("hot_cell", [("delivery", "usage"), ("billing", "onboarding")])
def test_the_heatmap_ranks_the_cell_that_breaks_most_first(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth, hot_cell: tuple[str, str]
) -> None:
    now = simulated_month.now
    insert_sample(fresh_store, build_sample(now, journeys=200, hot_cell=hot_cell), batch=500)
    rows = fresh_store.query(expand(LOST_POINTS_HEATMAP, simulated_month.context))
    assert (rows[0]["department"], rows[0]["stage"]) == hot_cell
    assert rows[0]["lost_points"] > rows[1]["lost_points"]


@pytest.mark.parametrize("preset", ["delivery-delays", "maintenance-visits"])
def test_the_heatmap_finds_the_breakdown_planted_in_a_simulated_company(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth, preset: str
) -> None:
    (kind,) = BREAKDOWN_PRESETS[preset]
    planted = (FAILURE_KINDS[kind].department, FAILURE_KINDS[kind].stage)
    now = simulated_month.now
    config = SimulationConfig(customers=500, days=7, start=now - timedelta(days=7),
                              breakdowns=BREAKDOWN_PRESETS[preset])  # fmt: skip
    insert_sample(fresh_store, pipeline_rows(simulate(config)[0], now), batch=2000)
    rows = fresh_store.query(expand(LOST_POINTS_HEATMAP, simulated_month.context))
    assert (rows[0]["department"], rows[0]["stage"]) == planted
