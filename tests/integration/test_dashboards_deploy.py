"""`journeys dashboards deploy` against a real HTTP server standing in for Grafana's API.

No live Grafana was available: the server below answers at the HTTP level with the request and
response shapes of Grafana's HTTP API documentation (Folder API, Data source API, Dashboard
API: status codes, JSON bodies, 404 messages), keeping what was created so a second run sees it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    requests: list[tuple[str, str, Any, str]] = field(default_factory=list)
    fail_with: int | None = None

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _, _ in self.requests if method != "GET"]

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if self.fail_with:
            return self.fail_with, {"message": "Permission denied"}
        parts = path.strip("/").split("/")
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


def handler_for(grafana: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.answer("GET")

        def do_POST(self) -> None:
            self.answer("POST")

        def answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization", "")
            grafana.requests.append((method, self.path, body, auth))
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


def run_deploy(url: str, **settings: Any) -> list[str]:
    loaded = load_settings(**settings)
    models = [dashboard_model(name) for name in DASHBOARDS]
    return [str(c) for c in deploy(connect(url, loaded), models, datasource_payload(loaded))]


def test_first_deploy_creates_everything_and_a_second_changes_nothing(
    grafana: tuple[FakeGrafana, str],
) -> None:
    state, url = grafana
    first = run_deploy(url, grafana_token=TOKEN, grafana_clickhouse_password="ro-secret")
    assert first[:2] == [
        "folder Customer journeys: created",
        "datasource Journeys ClickHouse: created",
    ]
    assert all(line.endswith(": created") for line in first) and len(first) == 2 + len(DASHBOARDS)
    assert state.writes() == [("POST", "/api/folders"), ("POST", "/api/datasources")] + [
        ("POST", "/api/dashboards/db")
    ] * len(DASHBOARDS)
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
    assert f"{2 + len(DASHBOARDS)} change(s)" in first.output
    second = CliRunner().invoke(cli, ["dashboards", "deploy", "--url", url])
    assert "0 change(s)" in second.output
    assert {auth for *_, auth in state.requests} == {f"Bearer {TOKEN}"}
