"""Every panel and variable query of the committed dashboards, expanded the way Grafana and the
ClickHouse plugin expand it, runs on chdb over the sample data and returns what its panel needs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.dashboards import DASHBOARDS, REPO_DASHBOARDS_DIR
from pipeline.dashboards.alerts import RULES
from pipeline.dashboards.macros import QueryContext, expand
from pipeline.dashboards.panels import PanelQuery, column_problems, panel_queries
from pipeline.dashboards.sample import Sample, build_sample
from pipeline.store import Store, apply_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded

ANCHOR = datetime.now(UTC).replace(microsecond=0)
QUOTED_DEPARTMENT = "o'neil\\"
VARIABLES = {"department": "billing", "customer": "c-0001", "journey": "j-0001",
             "due_within_hours": "24"}  # fmt: skip
CONTEXT = QueryContext(ANCHOR - timedelta(days=7), ANCHOR + timedelta(minutes=1),
                       timedelta(minutes=5), VARIABLES)  # fmt: skip


def committed_queries() -> list[PanelQuery]:
    models = [json.loads((REPO_DASHBOARDS_DIR / f"{n}.json").read_text()) for n in DASHBOARDS]
    alerts = [PanelQuery("alerts", rule.title, "table", rule.sql) for rule in RULES]
    return [q for model in models for q in panel_queries(model)] + alerts


QUERIES = committed_queries()


def insert_sample(store: Store, sample: Sample, batch: int) -> None:
    for table, rows in sample.tables().items():
        for start in range(0, len(rows), batch):
            store.insert(table, rows[start : start + batch])


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
    insert_sample(store, build_sample(ANCHOR), batch=1000)
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
    if query.dashboard != "alerts":  # alert rules answer nothing while all is well
        assert sample_store.query(sql), f"{query.name} returned no rows on the sample"


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
