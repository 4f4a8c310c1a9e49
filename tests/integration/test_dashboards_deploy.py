"""`journeys dashboards deploy` against a real HTTP server standing in for Grafana's API.

No live Grafana was available: the server below answers at the HTTP level with the request and
response shapes of Grafana's HTTP API documentation (Folder API, Data source API, Dashboard
API, Alerting provisioning API: status codes, JSON bodies, 404 messages, and the checks the
provisioning API makes: a rule group's folder and fields, a webhook's URL, a policy's
receivers), keeping what was created so a second run sees it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.dashboards import DASHBOARDS, dashboard_model
from pipeline.dashboards.deploy import DeployError, connect, datasource_payload, deploy
from pipeline.settings import load_settings

TOKEN = "glsa_test_token"


@dataclass
class FakeGrafana:
    """State and request log of the stand-in; `fail_with` makes every request fail."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    rule_groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    contact_points: list[dict[str, Any]] = field(default_factory=list)
    # A fresh Grafana's tree: everything to the default e-mail contact point.
    policy: dict[str, Any] = field(
        default_factory=lambda: {
            "receiver": "grafana-default-email",
            "group_by": ["grafana_folder", "alertname"],
        }
    )
    requests: list[tuple[str, str, Any, str]] = field(default_factory=list)
    fail_with: int | None = None
    # X-Disable-Provenance of each alerting write
    provenance: list[str] = field(default_factory=list)

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _, _ in self.requests if method != "GET"]

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if self.fail_with:
            return self.fail_with, {"message": "Permission denied"}
        parsed = urlsplit(path)
        parts, query = parsed.path.strip("/").split("/"), parse_qs(parsed.query)
        if method == "GET" and parts[:2] == ["api", "folders"]:
            folder = self.folders.get(parts[2])
            return (200, folder) if folder else (404, {"message": "folder not found"})
        if method == "POST" and parts == ["api", "folders"]:
            folder = {"id": len(self.folders) + 1, "uid": body["uid"], "title": body["title"],
                      "url": f"/dashboards/f/{body['uid']}/", "version": 1}  # fmt: skip
            self.folders[body["uid"]] = folder
            return 200, folder
        if method == "GET" and parts[:3] == ["api", "datasources", "uid"]:
            source = self.datasources.get(parts[3])
            return (200, source) if source else (404, {"message": "Data source not found"})
        if method == "POST" and parts == ["api", "datasources"]:
            source = {**body, "id": len(self.datasources) + 1, "orgId": 1}
            self.datasources[body["uid"]] = source
            return 200, {"datasource": source, "id": source["id"], "message": "Datasource added",
                         "name": body["name"]}  # fmt: skip
        if method == "GET" and parts[:3] == ["api", "dashboards", "uid"]:
            stored = self.dashboards.get(parts[3])
            return (200, stored) if stored else (404, {"message": "Dashboard not found"})
        if method == "POST" and parts == ["api", "dashboards", "db"]:
            return 200, self.save_dashboard(body)
        if parts[:3] == ["api", "v1", "provisioning"]:
            return self.provisioning(method, parts[3:], query, body)
        return 404, {"message": "Not found"}

    def provisioning(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if parts[:1] == ["folder"] and parts[2:3] == ["rule-groups"]:
            key = (parts[1], parts[3])
            if method == "GET":
                group = self.rule_groups.get(key)
                return (200, group) if group else (404, {"message": "rule group not found"})
            if parts[1] not in self.folders:
                return 404, {"message": "folder does not exist"}
            problem = rule_group_problem(body, *key)
            if problem:
                return 400, {"message": problem}
            stored = {**body, "rules": [{**rule, "id": n, "provenance": ""}
                                        for n, rule in enumerate(body["rules"], 1)]}  # fmt: skip
            self.rule_groups[key] = stored
            return 200, stored
        if parts == ["contact-points"] and method == "GET":
            names = query.get("name")
            return 200, [c for c in self.contact_points if not names or c["name"] in names]
        if parts[:1] == ["contact-points"] and method in ("POST", "PUT"):
            if body.get("type") != "webhook" or not str(body.get("settings", {}).get(
                    "url", "")).startswith("http"):  # fmt: skip
                return 400, {"message": "webhook: could not find url property in settings"}
            if method == "POST":
                self.contact_points.append({**body, "uid": body.get("uid") or body["name"]})
                return 202, self.contact_points[-1]
            for n, point in enumerate(self.contact_points):
                if point["uid"] == parts[1]:
                    self.contact_points[n] = {**body, "uid": parts[1]}
                    return 202, {}
            return 404, {"message": "contact point not found"}
        if parts == ["policies"] and method == "GET":
            return 200, self.policy
        if parts == ["policies"] and method == "PUT":
            known = {c["name"] for c in self.contact_points} | {"grafana-default-email"}
            unknown = receivers(body) - known
            if unknown:
                return 400, {"message": f"invalid object specification: receiver "
                                        f"'{sorted(unknown)[0]}' does not exist"}  # fmt: skip
            self.policy = body
            return 202, {"message": "policies updated"}
        return 404, {"message": "Not found"}

    def save_dashboard(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = body["dashboard"]["uid"]
        previous = self.dashboards.get(uid)
        version = previous["dashboard"]["version"] + 1 if previous else 1
        number = previous["dashboard"]["id"] if previous else len(self.dashboards) + 1
        self.dashboards[uid] = {
            "dashboard": {**body["dashboard"], "id": number, "version": version},
            "meta": {"folderUid": body["folderUid"], "slug": uid, "url": f"/d/{uid}/{uid}"},
        }
        return {"id": number, "uid": uid, "url": f"/d/{uid}/{uid}", "status": "success",
                "version": version, "slug": uid}  # fmt: skip


def rule_group_problem(body: dict[str, Any], folder: str, group: str) -> str | None:
    """What Grafana's rule-group PUT refuses (AlertRuleGroup / ProvisionedAlertRule)."""
    interval = body.get("interval")
    if not isinstance(interval, int) or interval <= 0 or interval % 10:
        return "invalid interval: must be a positive multiple of 10 s"
    for rule in body.get("rules", []):
        missing = [k for k in ("uid", "title", "condition", "data", "noDataState",
                               "execErrState", "for") if not rule.get(k)]  # fmt: skip
        if missing:
            return f"invalid alert rule: missing {missing}"
        if rule.get("folderUID") != folder or rule.get("ruleGroup") != group:
            return "rule folderUID and ruleGroup must match the path"
        refs = {query["refId"] for query in rule["data"]}
        if rule["condition"] not in refs or not all(q.get("datasourceUid") for q in rule["data"]):
            return "invalid alert rule: condition must name a query with a datasource"
    return None


def receivers(route: dict[str, Any]) -> set[str]:
    found = {route["receiver"]} if route.get("receiver") else set()
    for child in route.get("routes") or []:
        found |= receivers(child)
    return found


def handler_for(grafana: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.answer("GET")

        def do_POST(self) -> None:
            self.answer("POST")

        def do_PUT(self) -> None:
            self.answer("PUT")

        def answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization", "")
            grafana.requests.append((method, self.path, body, auth))
            if method != "GET" and "/provisioning/" in self.path:
                grafana.provenance.append(self.headers.get("X-Disable-Provenance", ""))
            if auth not in (f"Bearer {TOKEN}", "Basic " + base64.b64encode(b"admin:pw").decode()):
                status, payload = 401, {"message": "Unauthorized"}
            else:
                status, payload = grafana.route(method, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


RULES = "PUT", "/api/v1/provisioning/folder/journeys/rule-groups/journeys"


def run_deploy(url: str, webhooks: dict[str, str] | None = None, **settings: Any) -> list[str]:
    loaded = load_settings(**settings)
    models = [dashboard_model(name) for name in DASHBOARDS]
    api = connect(url, loaded)
    return [str(c) for c in deploy(api, models, datasource_payload(loaded), webhooks)]


def test_first_deploy_creates_everything_and_a_second_changes_nothing(
    grafana: tuple[FakeGrafana, str],
) -> None:
    state, url = grafana
    first = run_deploy(url, grafana_token=TOKEN, grafana_clickhouse_password="ro-secret")
    assert first[:2] == [
        "folder Customer journeys: created",
        "datasource Journeys ClickHouse: created",
    ]
    assert all(line.endswith(": created") for line in first) and len(first) == 3 + len(DASHBOARDS)
    assert first[-1] == "alert rules journeys (3 rules): created"
    assert state.writes() == [("POST", "/api/folders"), ("POST", "/api/datasources")] + [
        ("POST", "/api/dashboards/db")
    ] * len(DASHBOARDS) + [RULES]
    group = state.rule_groups[("journeys", "journeys")]
    uids = {r["uid"] for r in group["rules"]}
    assert group["interval"] == 60 and uids == {
        "journeys-broken-promises-spike",
        "journeys-rejections-spike",
        "journeys-pipeline-lag",
    }
    source = state.datasources["journeys-clickhouse"]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["protocol"] == "native"
    assert source["secureJsonData"] == {"password": "ro-secret"}
    saved = state.dashboards["journeys-operations"]
    assert saved["meta"]["folderUid"] == "journeys"
    kept = {k: v for k, v in saved["dashboard"].items() if k not in ("id", "version")}
    assert kept == {k: v for k, v in dashboard_model("operations").items() if k != "version"}

    state.requests.clear()
    second = run_deploy(url, grafana_token=TOKEN)
    assert all(line.endswith(": unchanged") for line in second)
    assert state.writes() == []


def test_a_dashboard_edited_in_grafana_is_put_back(grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    run_deploy(url, grafana_user="admin", grafana_password="pw")
    state.dashboards["journeys-heatmap"]["dashboard"]["title"] = "edited by hand"
    changes = run_deploy(url, grafana_user="admin", grafana_password="pw")
    assert "dashboard Journeys: heatmap: updated" in changes
    assert sum(not c.endswith("unchanged") for c in changes) == 1
    assert state.dashboards["journeys-heatmap"]["dashboard"]["version"] == 2


def test_grafana_refusing_is_a_clear_error(grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    state.fail_with = 403
    with pytest.raises(DeployError, match="Permission denied"):
        run_deploy(url, grafana_token=TOKEN)


def test_the_cli_reports_changes_and_needs_credentials(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = grafana
    monkeypatch.delenv("JOURNEYS_GRAFANA_TOKEN", raising=False)
    missing = CliRunner().invoke(cli, ["dashboards", "deploy", "--url", url])
    assert missing.exit_code == 1 and "JOURNEYS_GRAFANA_TOKEN" in missing.output
    assert state.requests == []

    monkeypatch.setenv("JOURNEYS_GRAFANA_TOKEN", TOKEN)
    first = CliRunner().invoke(cli, ["dashboards", "deploy", "--url", url])
    assert first.exit_code == 0, first.output
    assert f"{3 + len(DASHBOARDS)} change(s)" in first.output
    second = CliRunner().invoke(cli, ["dashboards", "deploy", "--url", url])
    assert "0 change(s)" in second.output
    assert {auth for *_, auth in state.requests} == {f"Bearer {TOKEN}"}


def test_alert_rules_edited_in_grafana_are_put_back(grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    run_deploy(url, grafana_token=TOKEN)
    state.rule_groups[("journeys", "journeys")]["rules"][0]["for"] = "1h"
    changes = run_deploy(url, grafana_token=TOKEN)
    assert "alert rules journeys (3 rules): updated" in changes
    assert sum(not c.endswith("unchanged") for c in changes) == 1
    assert state.rule_groups[("journeys", "journeys")]["rules"][0]["for"] == "5m"


def test_departments_with_webhooks_get_a_contact_point_and_a_route(
    grafana: tuple[FakeGrafana, str],
) -> None:
    state, url = grafana
    # An operator's own route, which a deploy must keep.
    own = {"receiver": "grafana-default-email", "object_matchers": [["team", "=", "db"]]}
    state.policy["routes"] = [own]
    hooks = {"maintenance": "https://field.example/hook", "billing": "https://bill.example/h"}
    first = run_deploy(url, hooks, grafana_token=TOKEN)
    assert first[-3:] == [
        "contact point journeys-billing: created",
        "contact point journeys-maintenance: created",
        "notification policy routes for 2 departments: updated",
    ]
    points = {c["name"]: c for c in state.contact_points}
    assert points["journeys-maintenance"]["settings"]["url"] == "https://field.example/hook"
    assert state.policy["receiver"] == "grafana-default-email"  # the default route kept
    assert state.policy["routes"] == [
        {"receiver": "journeys-billing", "object_matchers": [["department", "=", "billing"]],
         "group_by": ["grafana_folder", "alertname", "department"]},
        {"receiver": "journeys-maintenance",
         "object_matchers": [["department", "=", "maintenance"]],
         "group_by": ["grafana_folder", "alertname", "department"]},
        own,
    ]  # fmt: skip
    assert set(state.provenance) == {"true"}  # still editable in Grafana's UI
    state.requests.clear()
    assert all(c.endswith("unchanged") for c in run_deploy(url, hooks, grafana_token=TOKEN))
    assert state.writes() == []
    moved = run_deploy(url, hooks | {"billing": "https://bill.example/v2"}, grafana_token=TOKEN)
    assert [c for c in moved if not c.endswith("unchanged")] == [
        "contact point journeys-billing: updated"
    ]
    fewer = run_deploy(url, {"billing": "https://bill.example/v2"}, grafana_token=TOKEN)
    assert "notification policy routes for 1 departments: updated" in fewer
    assert [r["receiver"] for r in state.policy["routes"]] == [
        "journeys-billing", "grafana-default-email"]  # fmt: skip


def test_a_route_to_an_unknown_receiver_is_refused_clearly(
    grafana: tuple[FakeGrafana, str],
) -> None:
    from pipeline.dashboards.deploy import route_departments

    state, url = grafana
    api = connect(url, load_settings(grafana_token=TOKEN))
    with pytest.raises(Exception, match="receiver 'journeys-sales' does not exist"):
        route_departments(api, ["sales"])
    assert "routes" not in state.policy
