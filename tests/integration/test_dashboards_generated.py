"""The committed dashboards, alert rules and provisioning files are exactly what the code
generates, and `journeys dashboards build` keeps them so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.dashboards import DASHBOARDS, REPO_DASHBOARDS_DIR, render_all
from pipeline.dashboards.common import DATASOURCE_UID

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
    assert all("department" in r["annotations"]["summary"] for r in rules[:2])


def test_the_notification_policy_routes_by_department_to_a_provisioned_contact_point() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "alerting" / "notifications.yaml").read_text())
    assert provisioned["apiVersion"] == 1
    points = {p["name"]: p for p in provisioned["contactPoints"]}
    receiver = points["journeys-operations"]["receivers"][0]
    assert receiver["type"] == "webhook" and receiver["settings"]["url"].startswith("$")
    (policy,) = provisioned["policies"]
    assert policy["orgId"] == 1 and policy["receiver"] in points

    def receivers(route: dict[str, Any]) -> set[str]:
        found = {route["receiver"]}
        for child in route.get("routes", []):
            found |= receivers(child)
        return found

    assert receivers(policy) <= set(points)  # Grafana refuses a route to an unknown one
    (by_department,) = policy["routes"]
    assert by_department["object_matchers"] == [["department", "=~", ".+"]]
    assert "department" in by_department["group_by"]


def test_build_writes_into_an_empty_directory_and_check_then_passes(tmp_path: Path) -> None:
    stale = CliRunner().invoke(cli, ["dashboards", "build", "--check", "--out", str(tmp_path)])
    assert stale.exit_code == 1 and "stale" in stale.output
    built = CliRunner().invoke(cli, ["dashboards", "build", "--out", str(tmp_path)])
    assert built.exit_code == 0 and f"{len(render_all())} file(s) changed" in built.output
    again = CliRunner().invoke(cli, ["dashboards", "build", "--out", str(tmp_path)])
    assert "0 file(s) changed" in again.output
    checked = CliRunner().invoke(cli, ["dashboards", "build", "--check", "--out", str(tmp_path)])
    assert checked.exit_code == 0, checked.output
