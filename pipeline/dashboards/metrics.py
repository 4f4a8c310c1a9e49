"""Rows for `pipeline_metrics`: the names the pipeline-health dashboard and the lag alert
read. Defined with their only writer, the worker's health sampler (`pipeline.stream.health`).
"""

from __future__ import annotations

from pipeline.stream.health import METRIC_NAMES, MetricError, metric_row

__all__ = ["METRIC_NAMES", "MetricError", "metric_row"]
