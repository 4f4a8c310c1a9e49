"""Deploy the dashboards to a running Grafana over its HTTP API (grafana-client).

Idempotent: the folder and the datasource are created only when missing (an existing
datasource is left as its owner configured it), and a dashboard is written only when its
JSON differs from what Grafana holds, so a second run reports everything unchanged. The
alert rules (one rule group), the departments' contact points and their routes in the
notification policy (pipeline/dashboards/routing.py) are written the same way: only what
differs from Grafana's copy, compared on the fields this module sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from pipeline.dashboards.alerts import alert_provisioning
from pipeline.dashboards.common import DATASOURCE_NAME, DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID
from pipeline.dashboards.query import PLUGIN_ID
from pipeline.dashboards.routing import (
    contact_point,
    department_receiver,
    policy_with_departments,
)
from pipeline.settings import Settings

Action = Literal["created", "updated", "unchanged"]
# Grafana adds these to a stored dashboard; they say nothing about its content.
_SERVER_FIELDS = ("id", "version")


class DeployError(RuntimeError):
    """Grafana refused a request; the message names the object and Grafana's reason."""


@dataclass(frozen=True)
class Change:
    kind: Literal[
        "folder", "datasource", "dashboard", "alert rules", "contact point", "notification policy"
    ]
    name: str
    action: Action

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.action}"


def connect(url: str, settings: Settings) -> GrafanaApi:
    """A client for `url`, authenticated by token or by user and password from settings."""
    credential: str | tuple[str, str]
    if settings.grafana_token is not None:
        credential = settings.grafana_token.get_secret_value()
    elif settings.grafana_user and settings.grafana_password is not None:
        credential = (settings.grafana_user, settings.grafana_password.get_secret_value())
    else:
        raise DeployError(
            "no Grafana credentials: set JOURNEYS_GRAFANA_TOKEN, or JOURNEYS_GRAFANA_USER and "
            "JOURNEYS_GRAFANA_PASSWORD"
        )
    return GrafanaApi.from_url(url, credential=credential, timeout=10.0)


def datasource_payload(settings: Settings) -> dict[str, Any]:
    """The datasource as dashboards/provisioning/datasources/ describes it, for the API."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "access": "proxy",
        "jsonData": {
            "host": settings.grafana_clickhouse_host,
            "port": settings.grafana_clickhouse_port,
            "protocol": "native",
            "secure": False,
            "username": settings.grafana_clickhouse_user,
            "defaultDatabase": settings.clickhouse_database,
        },
        "secureJsonData": {"password": settings.grafana_clickhouse_password.get_secret_value()},
    }


def _missing(call: Callable[[], Any]) -> bool:
    try:
        call()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return True
        raise
    return False


def ensure_folder(api: GrafanaApi) -> Change:
    if not _missing(lambda: api.folder.get_folder(FOLDER_UID)):
        return Change("folder", FOLDER_TITLE, "unchanged")
    api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
    return Change("folder", FOLDER_TITLE, "created")


def ensure_datasource(api: GrafanaApi, payload: dict[str, Any]) -> Change:
    if not _missing(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID)):
        return Change("datasource", DATASOURCE_NAME, "unchanged")
    api.datasource.create_datasource(payload)
    return Change("datasource", DATASOURCE_NAME, "created")


def _content(dashboard: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dashboard.items() if k not in _SERVER_FIELDS}


def upsert_dashboard(api: GrafanaApi, dashboard: dict[str, Any]) -> Change:
    uid, title = str(dashboard["uid"]), str(dashboard["title"])
    try:
        current = api.dashboard.get_dashboard(uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        current = None
    if current is not None:
        same_folder = current.get("meta", {}).get("folderUid") == FOLDER_UID
        if same_folder and _content(current["dashboard"]) == _content(dashboard):
            return Change("dashboard", title, "unchanged")
    api.dashboard.update_dashboard(
        {
            "dashboard": {**_content(dashboard), "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "journeys dashboards deploy",
        }
    )
    return Change("dashboard", title, "created" if current is None else "updated")


def rule_group_payload() -> dict[str, Any]:
    """The alert rules of dashboards/provisioning/alerting/journeys.yaml as the provisioning
    API's rule group (PUT /api/v1/provisioning/folder/{folder}/rule-groups/{group})."""
    group = alert_provisioning()["groups"][0]
    rules = [
        {**rule, "orgID": 1, "folderUID": FOLDER_UID, "ruleGroup": group["name"]}
        for rule in group["rules"]
    ]
    seconds = int(str(group["interval"]).removesuffix("m")) * 60
    return {"title": group["name"], "folderUid": FOLDER_UID, "interval": seconds, "rules": rules}


def _holds(theirs: Any, ours: Any) -> bool:
    """Grafana's copy holds ours: every field we set has our value (Grafana adds its own:
    ids, provenance, update times, defaults)."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(_holds(theirs.get(k), v) for k, v in ours.items())
    if isinstance(ours, list):
        return (isinstance(theirs, list) and len(theirs) == len(ours)
                and all(_holds(t, o) for t, o in zip(theirs, ours, strict=True)))  # fmt: skip
    return bool(theirs == ours)


def upsert_rule_group(api: GrafanaApi) -> Change:
    payload = rule_group_payload()
    provisioning = api.alertingprovisioning
    try:
        current = provisioning.get_rule_group(FOLDER_UID, payload["title"])
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        current = None
    name = f"{payload['title']} ({len(payload['rules'])} rules)"
    if current is not None and _holds(current, payload):
        return Change("alert rules", name, "unchanged")
    provisioning.update_rule_group(FOLDER_UID, payload["title"], payload, disable_provenance=True)
    return Change("alert rules", name, "created" if current is None else "updated")


def upsert_contact_point(api: GrafanaApi, department: str, url: str) -> Change:
    payload = contact_point(department_receiver(department), url)
    provisioning = api.alertingprovisioning
    found = provisioning.get_contactpoints(name=payload["name"]) or []
    if not found:
        provisioning.create_contactpoint(payload, disable_provenance=True)
        return Change("contact point", payload["name"], "created")
    if _holds(found[0], payload):
        return Change("contact point", payload["name"], "unchanged")
    provisioning.update_contactpoint(found[0]["uid"], payload, disable_provenance=True)
    return Change("contact point", payload["name"], "updated")


def route_departments(api: GrafanaApi, departments: list[str]) -> Change:
    provisioning = api.alertingprovisioning
    current = provisioning.get_notification_policy_tree()
    wanted = policy_with_departments(current, departments)
    name = f"routes for {len(departments)} departments"
    if _holds(current, wanted):
        return Change("notification policy", name, "unchanged")
    provisioning.set_notification_policy_tree(wanted, disable_provenance=True)
    return Change("notification policy", name, "updated")


def deploy(
    api: GrafanaApi,
    dashboards: Iterable[dict[str, Any]],
    datasource: dict[str, Any],
    department_webhooks: Mapping[str, str] | None = None,
) -> list[Change]:
    """Folder, datasource, every dashboard, the alert rules; then, for the departments in
    `department_webhooks` (department -> URL), their contact points and their routes in
    the notification policy (contact points first: Grafana refuses a route to a receiver
    it does not know). What each step did."""
    try:
        changes = [ensure_folder(api), ensure_datasource(api, datasource)]
        changes += [upsert_dashboard(api, dashboard) for dashboard in dashboards]
        changes.append(upsert_rule_group(api))
        webhooks = dict(department_webhooks or {})
        if webhooks:
            changes += [upsert_contact_point(api, d, url) for d, url in sorted(webhooks.items())]
            changes.append(route_departments(api, sorted(webhooks)))
    except GrafanaException as exc:
        raise DeployError(f"Grafana refused the request: {exc.message}") from exc
    except OSError as exc:  # niquests' connection errors are OSErrors
        raise DeployError(f"cannot reach Grafana: {exc}") from exc
    return changes
