"""Grafana alert rules, as a provisioning file (`dashboards/provisioning/alerting/`).

Each rule is one ClickHouse query that returns one row per alerting dimension (a string
column becomes a label, e.g. `department`) and one number, plus a threshold expression.
The queries use the same macros as the panels and are tested the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.dashboards.common import DATASOURCE_UID, FOLDER_TITLE, LIVE_MODEL
from pipeline.dashboards.query import ClickHouseQuery

# Broken promises in the last hour against the hourly average of the 24 hours before; a
# spike needs at least 5 in the hour so a quiet department does not page on 1 vs 0.
# signals_by_department (0005) holds each department's promise_broken day as a key range.
BROKEN_PROMISES_SPIKE = f"""
SELECT department,
       if(last_hour >= 5, last_hour / greatest(before / 24, 1), 0) AS spike_ratio
FROM (
    SELECT department,
           countIf(effective_at >= $__toTime - INTERVAL 1 HOUR) AS last_hour,
           countIf(effective_at < $__toTime - INTERVAL 1 HOUR) AS before
    FROM signals_by_department FINAL
    WHERE hour >= toStartOfHour($__toTime - INTERVAL 25 HOUR) AND hour <= $__toTime
      AND effective_at >= $__toTime - INTERVAL 25 HOUR AND effective_at <= $__toTime
      AND signal = 'promise_broken' AND active = 1 AND model_version = {LIVE_MODEL}
    GROUP BY department
)
ORDER BY department
"""

REJECTIONS_SPIKE = """
SELECT department,
       if(last_hour >= 20, last_hour / greatest(before / 24, 1), 0) AS spike_ratio
FROM (
    SELECT if(department = '', '(unknown)', department) AS department,
           uniqMergeIf(rejections, hour >= toStartOfHour($__toTime)) AS last_hour,
           uniqMergeIf(rejections, hour < toStartOfHour($__toTime)) AS before
    FROM rejections_per_hour
    WHERE hour >= toStartOfHour($__toTime - INTERVAL 24 HOUR) AND hour <= $__toTime
    GROUP BY department
)
ORDER BY department
"""

PIPELINE_LAG = """
SELECT topic, sum(lag) AS consumer_lag
FROM (
    SELECT topic, partition, argMax(value, time) AS lag
    FROM pipeline_metrics FINAL
    WHERE name = 'consumer_lag' AND $__timeFilter_ms(time)
    GROUP BY topic, partition
)
GROUP BY topic
ORDER BY topic
"""


@dataclass(frozen=True)
class AlertRule:
    uid: str
    title: str
    sql: str
    threshold: float
    window_seconds: int
    summary: str
    pending: str = "5m"

    def to_provisioning(self) -> dict[str, Any]:
        query = ClickHouseQuery(self.sql.strip(), "table", ref_id="A").to_json()
        return {
            "uid": self.uid,
            "title": self.title,
            "condition": "B",
            "data": [
                {
                    "refId": "A",
                    "datasourceUid": DATASOURCE_UID,
                    "relativeTimeRange": {"from": self.window_seconds, "to": 0},
                    "model": query,
                },
                {
                    "refId": "B",
                    "datasourceUid": "__expr__",
                    "model": {
                        "refId": "B",
                        "type": "threshold",
                        "expression": "A",
                        "conditions": [{"evaluator": {"type": "gt", "params": [self.threshold]}}],
                    },
                },
            ],
            "for": self.pending,
            "noDataState": "OK",
            "execErrState": "Error",
            "annotations": {"summary": self.summary},
            "labels": {"product": "journeys"},
        }


RULES = [
    AlertRule(
        "journeys-broken-promises-spike",
        "Broken promises spiking for a department",
        BROKEN_PROMISES_SPIKE,
        threshold=3,
        window_seconds=25 * 3600,
        summary="{{ $labels.department }} broke 3x its usual hourly number of promises.",
    ),
    AlertRule(
        "journeys-rejections-spike",
        "Rejected events spiking for a department",
        REJECTIONS_SPIKE,
        threshold=3,
        window_seconds=25 * 3600,
        summary="{{ $labels.department }} sends 3x its usual hourly number of invalid events.",
    ),
    AlertRule(
        "journeys-pipeline-lag",
        "Pipeline lag",
        PIPELINE_LAG,
        threshold=10_000,
        window_seconds=300,
        summary="Workers are {{ $values.A }} messages behind on {{ $labels.topic }}.",
    ),
]


def alert_provisioning() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": "journeys",
                "folder": FOLDER_TITLE,
                "interval": "1m",
                "rules": [rule.to_provisioning() for rule in RULES],
            }
        ],
    }
