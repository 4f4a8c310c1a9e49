"""The generated dashboards are well-formed for Grafana and the ClickHouse plugin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.dashboards import DASHBOARDS, dashboard_model
from pipeline.dashboards.common import DATASOURCE_UID
from pipeline.dashboards.query import ClickHouseQuery, ClickHouseQueryBuilder
from tests.support.dashboards.queries import PanelQuery, column_problems, panel_queries


@pytest.mark.parametrize("name", list(DASHBOARDS))
def test_every_panel_is_described_and_reads_the_clickhouse_datasource(name: str) -> None:
    model = dashboard_model(name)
    assert model["uid"].startswith("journeys-") and model["timezone"] == "utc"
    ids = [panel["id"] for panel in model["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in model["panels"]:
        assert panel["description"], panel["title"]
        assert panel["datasource"]["uid"] == DATASOURCE_UID
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["editorType"] == "sql" and target["rawSql"].strip()


@pytest.mark.parametrize("name", list(DASHBOARDS))
def test_text_variables_reach_sql_only_percent_encoded(name: str) -> None:
    model = dashboard_model(name)
    variables = {v["name"] for v in model.get("templating", {}).get("list", [])}
    for query in panel_queries(model):
        used = set(re.findall(r"\$\{?(\w+)", query.sql)) - {"__timeFilter"}
        used = {u for u in used if not u.startswith("__")}
        assert used <= variables, f"{query.name} uses undefined variables {used - variables}"
        for raw in re.findall(r"\$\{?(\w+)(?::(\w+))?\}?", query.sql):
            if not raw[0].startswith("__"):
                assert raw[1] == "percentencode", f"{query.name}: ${raw[0]} is not percent-encoded"


def test_the_live_dashboard_refreshes_most_often_and_each_as_documented() -> None:
    unit = {"s": 1, "m": 60, "h": 3600}
    every = {
        model["title"]: int(model["refresh"][:-1]) * unit[model["refresh"][-1]]
        for model in map(dashboard_model, DASHBOARDS)
        if model.get("refresh")
    }
    assert min(every, key=every.__getitem__) == dashboard_model("operations")["title"]
    guide = (Path(__file__).parents[2] / "docs" / "dashboards.md").read_text()
    documented = re.findall(r"^### (.+?) \(.*refreshes every (\d+) s\b", guide, re.MULTILINE)
    assert len(documented) >= 2, "docs/dashboards.md names no refresh interval"
    assert {title: every[title] for title, _ in documented} == {
        title: int(seconds) for title, seconds in documented
    }


def test_the_query_type_round_trips_through_json() -> None:
    query = ClickHouseQueryBuilder("SELECT 1").query_type("timeseries").ref_id("B").build()
    payload = query.to_json()
    assert payload == {"editorType": "sql", "format": 0, "queryType": "timeseries",
                       "rawSql": "SELECT 1", "refId": "B"}  # fmt: skip
    assert ClickHouseQuery.from_json(payload).to_json() == payload


@pytest.mark.parametrize(
    ("panel_type", "columns", "problem"),
    [
        ("timeseries", [("time", "DateTime"), ("n", "UInt64")], None),
        ("timeseries", [("t", "DateTime"), ("n", "UInt64")], "first column"),
        ("timeseries", [("time", "DateTime"), ("d", "String")], "numeric"),
        ("stat", [("n", "Float64")], None),
        ("stat", [("a", "Float64"), ("b", "UInt8")], "exactly one numeric"),
        ("barchart", [("d", "LowCardinality(String)"), ("n", "Int64")], None),
        ("barchart", [("n", "Int64"), ("d", "String")], "text column first"),
        ("variable", [("a", "String"), ("b", "String"), ("c", "String")], "1 (value) or 2"),
        ("table", [], "no columns"),
    ],
)
def test_column_problems(
    panel_type: str, columns: list[tuple[str, str]], problem: str | None
) -> None:
    found = column_problems(PanelQuery("d", "p", panel_type, "SELECT"), columns)
    assert found == [] if problem is None else any(problem in p for p in found)


def test_a_matrix_heatmap_needs_its_pivot_columns() -> None:
    pivot = {"id": "groupingToMatrix", "options": {"rowField": "department", "columnField": "stage",
                                                   "valueField": "lost_points"}}  # fmt: skip
    query = PanelQuery("d", "p", "table", "SELECT", (pivot,))
    assert column_problems(query, [("department", "String"), ("lost_points", "Float64")]) == [
        "groupingToMatrix needs column 'stage'"
    ]
