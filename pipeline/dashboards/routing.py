"""Where Grafana's alert notifications go: contact points and a notification policy that
routes by the rules' `department` label (pipeline/dashboards/alerts.py).

Two ways in, as for the dashboards. The provisioning file
(`dashboards/provisioning/alerting/notifications.yaml`) gives operations a webhook contact
point (its URL from Grafana's environment, `GRAFANA_ALERT_WEBHOOK_URL`) and a policy that
sends each department's notifications separately (grouped by department). `journeys
dashboards deploy` goes further where it knows the departments' webhooks
(JOURNEYS_ALERT_WEBHOOKS): a contact point per department and a route per department to
it, added to the policy tree Grafana holds (its default receiver and other routes kept).
Grafana cannot sign a webhook the pipeline's way (`journeys alerts deliver` does), so its
notifications to a department carry Grafana's own payload, unsigned; a department that
verifies signatures gives Grafana a URL of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPERATIONS = "journeys-operations"
OPERATIONS_URL = "$GRAFANA_ALERT_WEBHOOK_URL"  # interpolated by Grafana from its environment
LABEL = "department"
_ROOT_GROUP_BY = ["grafana_folder", "alertname"]
_DEPARTMENT_GROUP_BY = ["grafana_folder", "alertname", LABEL]


def department_receiver(department: str) -> str:
    return f"journeys-{department}"


def contact_point(name: str, url: str) -> dict[str, Any]:
    """A webhook contact point as the provisioning API takes it (EmbeddedContactPoint)."""
    return {
        "uid": name,
        "name": name,
        "type": "webhook",
        "settings": {"url": url, "httpMethod": "POST"},
        "disableResolveMessage": False,
    }


def department_route(department: str) -> dict[str, Any]:
    return {
        "receiver": department_receiver(department),
        "object_matchers": [[LABEL, "=", department]],
        "group_by": _DEPARTMENT_GROUP_BY,
    }


def is_department_route(route: Mapping[str, Any]) -> bool:
    """A route this module made (deploy replaces those, and keeps every other)."""
    matchers = route.get("object_matchers") or []
    return str(route.get("receiver", "")).startswith("journeys-") and any(
        m[0] == LABEL for m in matchers
    )


def policy_with_departments(current: Mapping[str, Any], departments: list[str]) -> dict[str, Any]:
    """Grafana's policy tree with one route per department first, in name order; the tree's
    receiver, timings and other routes as they were."""
    kept = [route for route in current.get("routes") or [] if not is_department_route(route)]
    return {**current, "routes": [department_route(d) for d in sorted(departments)] + kept}


def notification_provisioning() -> dict[str, Any]:
    """The provisioning file: operations' contact point, and a policy that keeps each
    department's notifications apart (one group per department), to operations."""
    point = contact_point(OPERATIONS, OPERATIONS_URL)
    receiver = {k: point[k] for k in ("uid", "type", "settings", "disableResolveMessage")}
    return {
        "apiVersion": 1,
        "contactPoints": [{"orgId": 1, "name": OPERATIONS, "receivers": [receiver]}],
        "policies": [
            {
                "orgId": 1,
                "receiver": OPERATIONS,
                "group_by": _ROOT_GROUP_BY,
                "routes": [
                    {
                        "receiver": OPERATIONS,
                        "object_matchers": [[LABEL, "=~", ".+"]],
                        "group_by": _DEPARTMENT_GROUP_BY,
                    }
                ],
            }
        ],
    }
