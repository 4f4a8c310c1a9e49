"""Samples of the worker's health for `pipeline_metrics`, which the pipeline-health
dashboard and the lag alert read.

Without these rows the dashboard's lag and sink-retry panels stay empty and the lag alert
never fires, so the worker writes a sample every `worker_health_sample_seconds`. The names,
each one a panel or the alert reads (`pipeline/dashboards/pipeline_health.py`, `alerts.py`):

- `consumer_lag`: messages behind (log end offset - committed offset), per input topic and
  partition, every ~15 s for each assigned partition.
- `sink_retries`: ClickHouse writes retried since the previous sample (0 included), with
  topic '' and partition -1, every ~15 s.

Throughput and event-to-stored latency need nothing here: they come from the touchpoints'
`_ingested_at - occurred_at` through `touchpoints_ingested_per_minute`. The row schema lives
here, with its only writer, so the worker imports nothing of the dashboards package; the
dashboard tests build their samples with `metric_row` too.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pipeline.stream.metrics import Metrics

METRIC_NAMES = ("consumer_lag", "sink_retries")


class MetricError(ValueError):
    """A metric row would be wrong; the message names the field, the value, what is expected."""


def metric_row(
    name: str,
    value: float,
    worker: str,
    at: datetime,
    topic: str = "",
    partition: int = -1,
) -> dict[str, Any]:
    """One `pipeline_metrics` row, checked. Insert a list of them with `Store.insert`."""
    if name not in METRIC_NAMES:
        raise MetricError(f"name={name!r}: expected one of {', '.join(METRIC_NAMES)}")
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise MetricError(f"value={value!r}: expected a finite number for {name}")
    if at.tzinfo is None:
        raise MetricError(f"at={at!r}: expected a timezone-aware datetime")
    if not worker:
        raise MetricError("worker='': expected the worker's name (e.g. host:pid)")
    if partition < -1:
        raise MetricError(f"partition={partition}: expected a partition number, or -1 for none")
    return {"time": at, "worker": worker, "name": name, "topic": topic,
            "partition": partition, "value": float(value)}  # fmt: skip


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
