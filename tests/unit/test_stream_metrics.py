"""The worker's Prometheus text and the readiness checks that read the same counters."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from pipeline.stream import readiness
from pipeline.stream.metrics import Metrics

LIMITS = readiness.Limits(max_lag=100, max_flush_age_seconds=30)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.prometheus())
        for s in family.samples
    }


def test_label_values_are_escaped_so_the_text_parses_back() -> None:
    metrics = Metrics()
    awkward = 'say "no"\\n\nagain'  # a quote, a backslash and a newline
    metrics.reject(awkward)
    metrics.reject("schema")
    metrics.rows_by_table["journeys"] = 7
    metrics.consumer_lag["3"] = 12
    values = samples(metrics)
    assert values[("journeys_rejected_by_code_total", (("code", awkward),))] == 1
    assert values[("journeys_rejected_by_code_total", (("code", "schema"),))] == 1
    assert values[("journeys_rejected_total", ())] == 2
    assert values[("journeys_rows_by_table_total", (("table", "journeys"),))] == 7
    assert values[("journeys_consumer_lag", (("partition", "3"),))] == 12


def test_metric_names_dashboards_and_alerts_read_are_kept() -> None:
    metrics = Metrics()
    metrics.add("received", 5)
    metrics.stored(0.2, events=4)
    names = {name for name, _ in samples(metrics)}
    for kept in ("received", "accepted", "rejected", "duplicates", "rows_written", "flushes",
                 "sink_retries", "sink_failures"):  # fmt: skip
        assert f"journeys_{kept}_total" in names
    assert {"journeys_sink_buffered_rows", "journeys_event_to_stored_seconds_bucket",
            "journeys_event_to_stored_seconds_count"} <= names  # fmt: skip
    assert samples(metrics)[("journeys_event_to_stored_seconds_bucket", (("le", "0.25"),))] == 4


def test_each_metrics_object_has_a_registry_of_its_own() -> None:
    first, second = Metrics(), Metrics()
    first.add("received", 3)
    assert first.registry is not second.registry
    assert samples(second)[("journeys_received_total", ())] == 0


def test_store_check_fails_from_a_failed_write_until_the_next_flush() -> None:
    metrics = Metrics()
    assert not readiness.store_check(metrics, store_open=False).ok
    assert readiness.store_check(metrics, store_open=True).ok
    metrics.add("sink_failures")
    check = readiness.store_check(metrics, store_open=True)
    assert not check.ok and "failed" in check.detail
    metrics.flushed()
    assert readiness.store_check(metrics, store_open=True).ok


def test_flush_age_counts_only_while_rows_wait() -> None:
    metrics = Metrics()
    later = metrics.started_at + 100
    assert readiness.flush_check(metrics, LIMITS, now=later).ok, "idle: nothing to flush"
    metrics.buffered_rows = 10
    check = readiness.flush_check(metrics, LIMITS, now=later)
    assert not check.ok and "10 rows waiting" in check.detail
    metrics.flushed()
    assert readiness.flush_check(metrics, LIMITS, now=metrics.started_at + 1e-3 + 1).ok


def test_lag_over_the_limit_fails() -> None:
    metrics = Metrics()
    metrics.consumer_lag.update({"0": 60, "1": 40})
    assert readiness.lag_check(metrics, LIMITS).ok
    metrics.consumer_lag["2"] = 1
    assert not readiness.lag_check(metrics, LIMITS).ok


def test_verdict_names_the_failed_checks() -> None:
    async def unreachable() -> None:
        raise ConnectionError("127.0.0.1:1 refused")

    kafka = asyncio.run(readiness.kafka_check(unreachable))
    assert not kafka.ok and "refused" in kafka.detail
    status, body = readiness.verdict({"kafka": kafka, "lag": readiness.Check(True, "0 behind")})
    assert status == 503 and body["failed"] == ["kafka"] and body["ready"] is False
    assert readiness.verdict({"lag": readiness.Check(True, "0 behind")})[0] == 200
