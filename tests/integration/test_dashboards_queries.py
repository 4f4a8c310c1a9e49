"""Every panel and variable query of the committed dashboards, expanded the way Grafana and the
ClickHouse plugin expand it, runs on chdb over the sample data and returns what its panel needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.dashboards.engine_rows import metric_samples, pipeline_rows
from pipeline.dashboards.macros import QueryContext, expand
from pipeline.dashboards.panels import PanelQuery, column_problems
from pipeline.dashboards.refresh import refresh_now
from pipeline.dashboards.sample import Sample
from pipeline.dashboards.timing import committed_queries, time_queries
from pipeline.journey import DEFAULT_MODEL_PATH
from pipeline.simulate import SimulationConfig, default_start, simulate
from pipeline.store import Store, apply_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded
from pipeline.store.models import LIVE, record_model

ANCHOR = datetime.now(UTC).replace(microsecond=0)
QUOTED_DEPARTMENT = "o'neil\\"


def pipeline_sample(customers: int = 800) -> Sample:
    """A simulated company's month through the real validator and journey engine. The
    simulated period runs ten days past now (longer than any journey) and is cut at now, so
    now is mid-traffic: journeys under way, promises falling due."""
    start = default_start(30, ANCHOR + timedelta(days=10))
    config = SimulationConfig(customers=customers, days=30, start=start)
    sample = pipeline_rows(simulate(config)[0], ANCHOR)
    sample.pipeline_metrics = metric_samples(ANCHOR)
    return sample


SAMPLE = pipeline_sample()
WORST = max(SAMPLE.journeys, key=lambda journey: journey["lost_points"])
VARIABLES = {"department": "maintenance", "customer": WORST["customer_id"],
             "journey": WORST["journey_id"], "due_within_hours": "24",
             "model": "v1"}  # fmt: skip
CONTEXT = QueryContext(ANCHOR - timedelta(days=7), ANCHOR + timedelta(minutes=1),
                       timedelta(minutes=5), VARIABLES)  # fmt: skip


QUERIES = committed_queries()


def insert_sample(store: Store, sample: Sample, batch: int) -> None:
    for table, rows in sample.tables().items():
        for start in range(0, len(rows), batch):
            store.insert(table, rows[start : start + batch])
    refresh_now(store)  # the scheduled aggregates (0003), without waiting a minute
    # what a worker starting with the v1 model records: the model variable's first option
    # and the alert rules' version
    record_model(store, "v1", LIVE, DEFAULT_MODEL_PATH.read_text())


def quoted_department_signals() -> list[dict[str, object]]:
    rows = []
    for n, signal in enumerate(["rework", "rework", "long_wait"]):
        rows.append({
            "signal_id": f"quote-{n}", "journey_id": f"jq-{n}", "customer_id": "cq",
            "signal": signal, "department": QUOTED_DEPARTMENT, "stage": "usage", "impact": -4.0,
            "effective_at": ANCHOR - timedelta(hours=2), "evidence_event_ids": [],
            "reason": "it's broken", "score_model": "v1", "version": 1,
            "_topic": "journeys.scores", "_partition": 0, "_offset": n, "_ingested_at": ANCHOR,
        })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def sample_store(chdb_dir: Path) -> Iterator[EmbeddedStore]:
    store = open_embedded(chdb_dir, f"dashboards_{uuid.uuid4().hex[:8]}")
    apply_migrations(store)
    insert_sample(store, SAMPLE, batch=1000)
    store.insert("journey_signals", quoted_department_signals())
    yield store
    store.drop_database()


def result_columns(store: Store, sql: str) -> list[tuple[str, str]]:
    return [(r["name"], r["type"]) for r in store.query(f"DESCRIBE TABLE ({sql})")]


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_every_query_runs_and_returns_the_columns_its_panel_needs(
    sample_store: EmbeddedStore, query: PanelQuery
) -> None:
    sql = expand(query.sql, CONTEXT)
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
def test_journeys_that_turned_poor(fresh_store: EmbeddedStore, source: str) -> None:
    from pipeline.dashboards.operations import TURNED_POOR
    from pipeline.dashboards.sample import build_sample

    sample = SAMPLE if source == "pipeline" else build_sample(ANCHOR)
    insert_sample(fresh_store, sample, batch=700)
    found = {row["journey_id"] for row in fresh_store.query(expand(TURNED_POOR, CONTEXT))}
    # now() moves on while the test runs: allow a minute either side of the hour.
    assert turned_poor_within(sample, ANCHOR - timedelta(minutes=59)) <= found
    assert found <= turned_poor_within(sample, ANCHOR - timedelta(minutes=61))
    if source == "synthetic":
        assert found


DEPARTMENT_QUERIES = [q for q in QUERIES if "department:percentencode" in q.sql]


@pytest.mark.parametrize("query", DEPARTMENT_QUERIES, ids=[q.name for q in DEPARTMENT_QUERIES])
@pytest.mark.parametrize("hostile", ["x' OR 1=1 OR department != '", "x\\' OR 1=1 --", "%27"])
def test_a_quote_in_a_variable_cannot_change_the_query(
    sample_store: EmbeddedStore, query: PanelQuery, hostile: str
) -> None:
    context = QueryContext(CONTEXT.time_from, CONTEXT.time_to, CONTEXT.interval,
                           {**VARIABLES, "department": hostile})  # fmt: skip
    assert sample_store.query(expand(query.sql, context)) in ([], [{"promise_kept_pct": 0}])


def test_a_department_name_with_a_quote_matches_exactly_its_own_rows(
    sample_store: EmbeddedStore,
) -> None:
    from pipeline.dashboards.department import POINTS_BY_SIGNAL

    context = QueryContext(CONTEXT.time_from, CONTEXT.time_to, CONTEXT.interval,
                           {**VARIABLES, "department": QUOTED_DEPARTMENT})  # fmt: skip
    rows = sample_store.query(expand(POINTS_BY_SIGNAL, context))
    assert rows == [
        {"signal": "rework", "points": -8.0, "signals": 2},
        {"signal": "long_wait", "points": -4.0, "signals": 1},
    ]


def test_every_query_can_be_timed(sample_store: EmbeddedStore) -> None:
    timings = time_queries(sample_store, QUERIES, CONTEXT, runs=1)
    assert [t.query for t in timings] == [q.name for q in QUERIES]
    assert all(t.max_ms >= t.median_ms > 0 for t in timings)
