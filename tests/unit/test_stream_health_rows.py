"""pipeline_metrics rows (the health sampler's schema): the names the dashboards read, and clear
errors for bad ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from pipeline.store.migrations import load_migrations
from pipeline.stream.health import MetricError, metric_row

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def pipeline_metrics_columns() -> dict[str, str | None]:
    """The table's columns as its migration creates them, each with its DEFAULT (SQL)."""
    (statement,) = [
        sql for migration in load_migrations() for sql in migration.statements
        if re.match(r"CREATE TABLE IF NOT EXISTS pipeline_metrics\b", sql)
    ]  # fmt: skip
    body = statement[statement.index("(") + 1 : statement.index(") ENGINE")]
    columns = [
        re.match(r"\s*(\w+) .*?(?: DEFAULT ([^,]+))?,?$", line) for line in body.splitlines()
    ]
    return {m.group(1): m.group(2) for m in columns if m}


def test_a_sample_is_a_whole_row_of_the_table_and_a_global_one_takes_its_defaults() -> None:
    columns = pipeline_metrics_columns()
    lag = metric_row("consumer_lag", 12, "host:1", AT, "touchpoints", 3)
    assert set(lag) == set(columns)  # every column, none the insert would refuse
    assert (lag["time"], lag["partition"], lag["value"]) == (AT, 3, 12.0)
    assert isinstance(lag["value"], float)  # Float64, whatever number the sampler counted
    retries = metric_row("sink_retries", 2, "host:1", AT)
    assert (
        repr(retries["topic"]) == columns["topic"]
        and str(retries["partition"]) == columns["partition"]
    )


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
