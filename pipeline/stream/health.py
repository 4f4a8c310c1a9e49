"""Samples of the worker's health for `pipeline_metrics`, which the pipeline-health
dashboard and the lag alert read (names and meanings: `pipeline.dashboards.metrics`).

Without these rows the dashboard's lag and sink-retry panels stay empty and the lag alert
never fires, so the worker writes a sample every `worker_health_sample_seconds`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.dashboards.metrics import metric_row
from pipeline.stream.metrics import Metrics


class HealthSampler:
    """Turns the counters into rows; sink retries are reported per interval, not in total."""

    def __init__(self, worker: str, topic: str) -> None:
        self.worker = worker
        self.topic = topic
        self._retries_reported = 0

    def rows(self, metrics: Metrics, at: datetime) -> list[dict[str, Any]]:
        retries = metrics.counts["sink_retries"]
        rows = [
            metric_row("consumer_lag", lag, self.worker, at, self.topic, int(partition))
            for partition, lag in sorted(metrics.consumer_lag.items())
        ]
        rows.append(metric_row("sink_retries", retries - self._retries_reported, self.worker, at))
        self._retries_reported = retries
        return rows
