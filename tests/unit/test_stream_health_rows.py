"""pipeline_metrics rows (the health sampler's schema): the names the dashboards read, and clear
errors for bad ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.stream.health import MetricError, metric_row

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_lag_sample_is_a_row_of_the_table() -> None:
    assert metric_row("consumer_lag", 12, "host:1", AT, "touchpoints", 3) == {
        "time": AT, "worker": "host:1", "name": "consumer_lag", "topic": "touchpoints",
        "partition": 3, "value": 12.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "lag"}, "name='lag': expected one of consumer_lag"),
        ({"value": float("nan")}, "value=nan: expected a finite number"),
        ({"at": datetime(2026, 3, 1)}, "expected a timezone-aware datetime"),  # noqa: DTZ001
        ({"worker": ""}, "worker='': expected the worker's name"),
        ({"partition": -2}, "partition=-2: expected a partition number"),
    ],
)
def test_bad_rows_are_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"name": "sink_retries", "value": 1, "worker": "w", "at": AT}
    with pytest.raises(MetricError, match=message.replace("(", r"\(")):
        metric_row(**{**arguments, **kwargs})  # type: ignore[arg-type]
