"""Rows for `pipeline_metrics`: what the worker reports that no other table holds.

The pipeline-health dashboard and the lag alert read these names:

- `consumer_lag`: messages behind (log end offset - committed offset), per input topic and
  partition, every ~15 s for each assigned partition.
- `sink_retries`: ClickHouse writes retried since the previous sample (0 included), with
  topic '' and partition -1, every ~15 s.
- `sink_batch_seconds`: seconds the last batch insert took, topic = the table, per flush.

Throughput and event-to-stored latency need nothing here: they come from the touchpoints'
`_ingested_at - occurred_at` through `touchpoints_ingested_per_minute`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

METRIC_NAMES = ("consumer_lag", "sink_retries", "sink_batch_seconds")


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
