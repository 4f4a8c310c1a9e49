"""The aggregates the dashboards read stay correct under replays, and the heatmap finds the
department x stage that breaks most."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.dashboards.heatmap import LOST_POINTS_HEATMAP
from pipeline.dashboards.macros import expand
from pipeline.dashboards.sample import Sample, build_sample
from pipeline.store.embedded import EmbeddedStore
from tests.integration.test_dashboards_queries import ANCHOR, CONTEXT, QUERIES, insert_sample

AGGREGATES = ["touchpoints_per_minute", "touchpoints_per_hour", "touchpoints_ingested_per_minute",
              "rejections_per_hour", "signals_by_hour", "journeys_by_start",
              "journey_band_entries", "promises", "resolutions", "pipeline_metrics"]  # fmt: skip


def answers(store: EmbeddedStore) -> dict[str, Any]:
    return {query.name: store.query(expand(query.sql, CONTEXT)) for query in QUERIES}


def replayed(sample: Sample) -> Sample:
    """The same rows in reverse order, so batches split them at other boundaries."""
    return Sample(**{table: rows[::-1] for table, rows in sample.tables().items()})


def test_replayed_rows_in_other_batches_change_no_panel_answer(fresh_store: EmbeddedStore) -> None:
    sample = build_sample(ANCHOR, journeys=150)
    insert_sample(fresh_store, sample, batch=1000)
    before = answers(fresh_store)
    assert any(before.values())

    insert_sample(fresh_store, replayed(sample), batch=37)
    assert answers(fresh_store) == before

    # ...and still after ClickHouse merged the parts (states folded, versions replaced).
    for table in AGGREGATES:
        fresh_store.execute(f"OPTIMIZE TABLE {table} FINAL")
    assert answers(fresh_store) == before


def test_a_retracted_signal_leaves_the_heatmap(fresh_store: EmbeddedStore) -> None:
    sample = build_sample(ANCHOR, journeys=40)
    insert_sample(fresh_store, sample, batch=500)
    before = {(r["department"], r["stage"]): r["lost_points"]
              for r in fresh_store.query(expand(LOST_POINTS_HEATMAP, CONTEXT))}  # fmt: skip
    signal = next(s for s in sample.journey_signals if s["impact"] < 0)
    fresh_store.insert("journey_signals", [{**signal, "active": 0, "version": 2}])
    after = {(r["department"], r["stage"]): r["lost_points"]
             for r in fresh_store.query(expand(LOST_POINTS_HEATMAP, CONTEXT))}  # fmt: skip
    cell = (signal["department"], signal["stage"])
    assert after.get(cell, 0) == pytest.approx(before[cell] + signal["impact"])


@pytest.mark.parametrize("hot_cell", [("delivery", "usage"), ("billing", "onboarding")])
def test_the_heatmap_ranks_the_cell_that_breaks_most_first(
    fresh_store: EmbeddedStore, hot_cell: tuple[str, str]
) -> None:
    insert_sample(fresh_store, build_sample(ANCHOR, journeys=200, hot_cell=hot_cell), batch=500)
    rows = fresh_store.query(expand(LOST_POINTS_HEATMAP, CONTEXT))
    assert (rows[0]["department"], rows[0]["stage"]) == hot_cell
    assert rows[0]["lost_points"] > rows[1]["lost_points"]
