"""The worker's counters, as JSON and in Prometheus text format (written by prometheus-client).

Accounting: `received` counts messages read from the touchpoints topic; each is either
`accepted` or `rejected` (by code), so received = accepted + rejected at every flush.
`duplicates` are the accepted events recognised as re-sent (stored and scored once).
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# Event-to-stored latency buckets (seconds), for the histogram and the p99 estimate.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)

_HELP = {
    "received": "Messages read from the touchpoints topic.",
    "accepted": "Valid touchpoints (duplicates included).",
    "rejected": "Messages sent to the dead-letter topic and table.",
    "duplicates": "Accepted touchpoints already seen (by event_id).",
    "too_late": "Touchpoints older than their customer's retained journeys.",
    "rerouted": "Touchpoints re-keyed to their journey key's partition.",
    "routed_in": "Re-keyed touchpoints taken from the routed topic.",
    "routed_rejected": "Messages of the routed topic rejected (dead-lettered; not received).",
    "customers_erased": "Customers erased by this worker (`journeys erase` requests).",
    "erased_dropped": "Messages of erased customers dropped unread (a replay of their history).",
    "ticks": "Idle wall-clock ticks processed.",
    "signals": "Signals that appeared.",
    "signals_retracted": "Signals retracted by a later event.",
    "scores": "Journey score snapshots published.",
    "alerts": "Alerts published.",
    "rows_written": "Rows ClickHouse acknowledged.",
    "flushes": "Sink flushes ClickHouse acknowledged.",
    "sink_retries": "Sink writes retried after a failure.",
    "sink_failures": "Sink write attempts that failed.",
    "processing_failures": "Batches whose processing raised (each replays from the last "
    "checkpoint).",
    "poison_pills": "Messages dead-lettered as processing_error: their processing kept raising.",
    "context_answered": "Context API requests answered 200 from this worker's state.",
    "context_forwarded": "Context API requests answered by another worker (forwarded to it).",
    "context_refused": "Context API requests answered 4xx or 5xx by this worker.",
}


class Metrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.rejected_by_code: Counter[str] = Counter()
        self.rows_by_table: Counter[str] = Counter()
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.buffered_rows = 0
        self.consumer_lag: dict[str, int] = {}
        self.started_at = time.monotonic()
        # Set by the worker's flush path through `flushed()`; /readyz reads them.
        self.last_flush_at: float | None = None
        self._failures_at_flush = 0
        # One registry per instance: tests and benchmarks build several workers' metrics in
        # one process, and the global registry refuses a second collector of the same names.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def add_all(self, counts: Mapping[str, int]) -> None:
        """Several counts at once: the processor counts a batch, then adds it here."""
        self.counts.update(counts)

    def reject(self, code: str) -> None:
        self.counts["rejected"] += 1
        self.rejected_by_code[code] += 1

    @contextmanager
    def counting(self, keep: bool = True) -> Iterator[None]:
        """Counts made inside are kept only if the block completes and `keep` is true.

        The runtime processes each batch inside: a batch that raises counts nothing, and
        one read again after a rewind (`pipeline.stream.replays`) counts only messages not
        counted before, so received = accepted + rejected holds and no counter steps back.
        """
        counts, by_code = self.counts, self.rejected_by_code
        self.counts, self.rejected_by_code = Counter(), Counter()
        try:
            yield
            if keep:
                counts.update(self.counts)
                by_code.update(self.rejected_by_code)
        finally:
            self.counts, self.rejected_by_code = counts, by_code

    def stored(self, latency_seconds: float, events: int = 1) -> None:
        """`events` touchpoints reached ClickHouse `latency_seconds` after they were produced."""
        index = bisect.bisect_left(LATENCY_BUCKETS, latency_seconds)
        self.latency_counts[index] += events
        self.latency_sum += latency_seconds * events

    def latency_quantile(self, q: float) -> float | None:
        total = sum(self.latency_counts)
        if not total:
            return None
        rank, seen = q * total, 0
        for index, count in enumerate(self.latency_counts):
            seen += count
            if seen >= rank:
                return LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else float("inf")
        return float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: self.counts[name] for name in _HELP},
            "rejected_by_code": dict(self.rejected_by_code),
            "rows_by_table": dict(self.rows_by_table),
            "buffered_rows": self.buffered_rows,
            "consumer_lag": dict(self.consumer_lag),
            "event_to_stored_p99_seconds": self.latency_quantile(0.99),
            "last_flush_age_seconds": round(self.flush_age(), 3),
            "store_ok": self.store_ok,
        }

    def prometheus(self) -> str:
        return generate_latest(self.registry).decode()

    # --- readiness (read by /readyz) ------------------------------------------------
    def flushed(self) -> None:
        """A flush was stored and committed: its time, and the store's failures so far."""
        self.last_flush_at = time.monotonic()
        self._failures_at_flush = self.counts["sink_failures"]

    @property
    def store_ok(self) -> bool:
        """No store write has failed since the last flush that ClickHouse acknowledged."""
        return self.counts["sink_failures"] == self._failures_at_flush

    def flush_age(self, now: float | None = None) -> float:
        """Seconds since the last acknowledged flush (since start when there was none)."""
        since = self.last_flush_at if self.last_flush_at is not None else self.started_at
        return (time.monotonic() if now is None else now) - since


class _Collector(Collector):
    """Reads the counters at scrape time, so counting an event stays a dict increment.

    prometheus-client writes the text (escaping label values such as a reason code); a
    `Counter` object per name would cost a lock per event on the worker's hot path.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        for name, text in _HELP.items():
            yield CounterMetricFamily(f"journeys_{name}", text, value=m.counts[name])
        yield _labelled(CounterMetricFamily, "journeys_rejected_by_code",
                        "Rejections per reason code.", "code", m.rejected_by_code)  # fmt: skip
        yield _labelled(CounterMetricFamily, "journeys_rows_by_table",
                        "Rows written per table.", "table", m.rows_by_table)  # fmt: skip
        yield GaugeMetricFamily(
            "journeys_sink_buffered_rows", "Rows waiting for ClickHouse.", value=m.buffered_rows
        )
        yield _labelled(GaugeMetricFamily, "journeys_consumer_lag",
                        "Messages behind the partition's end.", "partition",
                        m.consumer_lag)  # fmt: skip
        yield GaugeMetricFamily(
            "journeys_last_flush_age_seconds",
            "Seconds since the last flush ClickHouse acknowledged (since start if none).",
            value=m.flush_age(),
        )
        cumulative, buckets = 0, []
        for bound, count in zip(LATENCY_BUCKETS, m.latency_counts, strict=False):
            cumulative += count
            buckets.append((floatToGoString(bound), float(cumulative)))
        buckets.append(("+Inf", float(sum(m.latency_counts))))
        yield HistogramMetricFamily(
            "journeys_event_to_stored_seconds", "Event produced to row stored.",
            buckets=buckets, sum_value=m.latency_sum,
        )  # fmt: skip


def _labelled(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    text: str,
    label: str,
    values: Mapping[str, int],
) -> Metric:
    metric = family(name, text, labels=[label])
    for value, count in sorted(values.items()):
        metric.add_metric([value], count)
    return metric
