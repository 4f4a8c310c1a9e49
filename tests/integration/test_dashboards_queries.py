"""Every panel and variable query of the committed dashboards, expanded the way Grafana and the
ClickHouse plugin expand it, runs on chdb over the sample data and returns what its panel needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.store import Store, apply_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded
from tests.support.dashboards.engine_rows import SimulatedMonth
from tests.support.dashboards.macros import expand
from tests.support.dashboards.queries import PanelQuery, column_problems, committed_queries
from tests.support.dashboards.sample import Sample, insert_sample
from tests.support.dashboards.timing import time_queries

QUOTED_DEPARTMENT = "o'neil\\"
QUERIES = committed_queries()


def quoted_department_signals(now: datetime) -> list[dict[str, object]]:
    rows = []
    for n, signal in enumerate(["rework", "rework", "long_wait"]):
        rows.append({
            "signal_id": f"quote-{n}", "journey_id": f"jq-{n}", "customer_id": "cq",
            "signal": signal, "department": QUOTED_DEPARTMENT, "stage": "usage", "impact": -4.0,
            "effective_at": now - timedelta(hours=2), "evidence_event_ids": [],
            "reason": "it's broken", "score_model": "v1", "version": 1,
            "_topic": "journeys.scores", "_partition": 0, "_offset": n, "_ingested_at": now,
        })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def sample_store(chdb_dir: Path, simulated_month: SimulatedMonth) -> Iterator[EmbeddedStore]:
    store = open_embedded(chdb_dir, f"dashboards_{uuid.uuid4().hex[:8]}")
    apply_migrations(store)
    insert_sample(store, simulated_month.sample, batch=1000)
    store.insert("journey_signals", quoted_department_signals(simulated_month.now))
    yield store
    store.drop_database()


def result_columns(store: Store, sql: str) -> list[tuple[str, str]]:
    return [(r["name"], r["type"]) for r in store.query(f"DESCRIBE TABLE ({sql})")]


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_every_query_runs_and_returns_the_columns_its_panel_needs(
    sample_store: EmbeddedStore, simulated_month: SimulatedMonth, query: PanelQuery
) -> None:
    sql = expand(query.sql, simulated_month.context)
    assert column_problems(query, result_columns(sample_store, sql)) == []
    if query.dashboard != "alerts" and query.title not in CHECKED_ELSEWHERE:
        assert sample_store.query(sql), f"{query.name} returned no rows on the sample"


# Empty on a quiet hour of the simulated company; test_journeys_that_turned_poor checks the
# exact answer on this data and on a sample where it is not empty.
CHECKED_ELSEWHERE = {"Journeys that turned poor in the last hour"}


def turned_poor_within(sample: Sample, since: datetime) -> set[str]:
    """From the snapshots themselves: first reached `poor` since `since`, and still poor."""
    first_poor: dict[str, datetime] = {}
    latest: dict[str, dict[str, object]] = {}
    for row in sample.journeys:
        journey = str(row["journey_id"])
        if row["band"] == "poor":
            first_poor[journey] = min(first_poor.get(journey, row["updated_at"]), row["updated_at"])
        if journey not in latest or row["version"] > latest[journey]["version"]:  # type: ignore[operator]
            latest[journey] = row
    return {j for j, at in first_poor.items() if at >= since and latest[j]["band"] == "poor"}


@pytest.mark.parametrize("source", ["pipeline", "synthetic"])
def test_journeys_that_turned_poor(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth, source: str
) -> None:
    from pipeline.dashboards.operations import TURNED_POOR
    from tests.support.dashboards.sample import build_sample

    now = simulated_month.now
    sample = simulated_month.sample if source == "pipeline" else build_sample(now)
    insert_sample(fresh_store, sample, batch=700)
    sql = expand(TURNED_POOR, simulated_month.context)
    found = {row["journey_id"] for row in fresh_store.query(sql)}
    # now() moves on while the test runs: allow a minute either side of the hour.
    assert turned_poor_within(sample, now - timedelta(minutes=59)) <= found
    assert found <= turned_poor_within(sample, now - timedelta(minutes=61))
    if source == "synthetic":
        assert found


DEPARTMENT_QUERIES = [q for q in QUERIES if "department:percentencode" in q.sql]


@pytest.mark.parametrize("query", DEPARTMENT_QUERIES, ids=[q.name for q in DEPARTMENT_QUERIES])
@pytest.mark.parametrize("hostile", ["x' OR 1=1 OR department != '", "x\\' OR 1=1 --", "%27"])
def test_a_quote_in_a_variable_cannot_change_the_query(
    sample_store: EmbeddedStore, simulated_month: SimulatedMonth, query: PanelQuery, hostile: str
) -> None:
    month = simulated_month.context
    context = replace(month, variables={**month.variables, "department": hostile})
    assert sample_store.query(expand(query.sql, context)) in ([], [{"promise_kept_pct": 0}])


def test_a_department_name_with_a_quote_matches_exactly_its_own_rows(
    sample_store: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    from pipeline.dashboards.department import POINTS_BY_SIGNAL

    month = simulated_month.context
    context = replace(month, variables={**month.variables, "department": QUOTED_DEPARTMENT})
    rows = sample_store.query(expand(POINTS_BY_SIGNAL, context))
    assert rows == [
        {"signal": "rework", "points": -8.0, "signals": 2},
        {"signal": "long_wait", "points": -4.0, "signals": 1},
    ]


def test_every_query_can_be_timed(
    sample_store: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    timings = time_queries(sample_store, QUERIES, simulated_month.context, runs=1)
    assert [t.query for t in timings] == [q.name for q in QUERIES]
    assert all(t.max_ms >= t.median_ms > 0 for t in timings)
