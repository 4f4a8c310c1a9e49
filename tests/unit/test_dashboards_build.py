"""The committed dashboards are exactly what the code generates, and well-formed for Grafana."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from pipeline.dashboards import DASHBOARDS, REPO_DASHBOARDS_DIR, dashboard_model, render_all
from pipeline.dashboards.common import DATASOURCE_UID
from pipeline.dashboards.panels import PanelQuery, column_problems, panel_queries
from pipeline.dashboards.query import ClickHouseQuery, ClickHouseQueryBuilder

PROVISIONING = REPO_DASHBOARDS_DIR / "provisioning"


def test_regenerating_the_dashboards_changes_nothing_that_is_committed() -> None:
    for relative, content in render_all().items():
        committed = (REPO_DASHBOARDS_DIR / relative).read_text()
        assert committed == content, f"{relative} is stale: run `journeys dashboards build`"


def test_generated_json_has_sorted_keys() -> None:
    for name in DASHBOARDS:
        text = (REPO_DASHBOARDS_DIR / f"{name}.json").read_text()
        assert (
            text
            == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        )


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


def test_the_operations_dashboard_is_live() -> None:
    assert dashboard_model("operations")["refresh"] == "10s"


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


def test_provisioning_files_are_valid_and_consistent() -> None:
    datasource = yaml.safe_load(
        (PROVISIONING / "datasources" / "journeys-clickhouse.yaml").read_text()
    )
    source = datasource["datasources"][0]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["protocol"] == "native"
    assert source["secureJsonData"]["password"].startswith("$")  # from the environment
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "journeys.yaml").read_text())
    assert provider["providers"][0]["folderUid"] == "journeys"
    alerts = yaml.safe_load((PROVISIONING / "alerting" / "journeys.yaml").read_text())
    rules = alerts["groups"][0]["rules"]
    expected = {
        "journeys-broken-promises-spike",
        "journeys-rejections-spike",
        "journeys-pipeline-lag",
    }
    assert {r["uid"] for r in rules} == expected
    assert all(r["data"][0]["datasourceUid"] == DATASOURCE_UID for r in rules)
