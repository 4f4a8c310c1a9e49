"""Health samples for the pipeline-health dashboard: lag per partition, retries per interval."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.stream.health import HealthSampler
from pipeline.stream.metrics import Metrics

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_lag_per_partition_and_retries_since_the_last_sample() -> None:
    metrics = Metrics()
    metrics.consumer_lag.update({"1": 40, "0": 3})
    metrics.add("sink_retries", 5)
    sampler = HealthSampler("host:1", "touchpoints")

    first = sampler.rows(metrics, AT)
    assert [(r["name"], r["topic"], r["partition"], r["value"]) for r in first] == [
        ("consumer_lag", "touchpoints", 0, 3.0),
        ("consumer_lag", "touchpoints", 1, 40.0),
        ("sink_retries", "", -1, 5.0),
    ]
    assert all(r["worker"] == "host:1" and r["time"] == AT for r in first)

    metrics.add("sink_retries", 2)
    second = sampler.rows(metrics, AT)
    assert second[-1]["value"] == 2.0

    assert sampler.rows(metrics, AT)[-1]["value"] == 0.0, "a quiet interval reports zero"
