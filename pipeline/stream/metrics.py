"""The worker's counters, as JSON and in Prometheus text format.

Accounting: `received` counts messages read from the touchpoints topic; each is either
`accepted` or `rejected` (by code), so received = accepted + rejected at every flush.
`duplicates` are the accepted events recognised as re-sent (stored and scored once).
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import Any

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
    "ticks": "Idle wall-clock ticks processed.",
    "signals": "Signals that appeared.",
    "signals_retracted": "Signals retracted by a later event.",
    "scores": "Journey score snapshots published.",
    "alerts": "Alerts published.",
    "rows_written": "Rows ClickHouse acknowledged.",
    "flushes": "Sink flushes ClickHouse acknowledged.",
    "sink_retries": "Sink writes retried after a failure.",
    "sink_failures": "Sink write attempts that failed.",
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

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def reject(self, code: str) -> None:
        self.counts["rejected"] += 1
        self.rejected_by_code[code] += 1

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
        }

    def prometheus(self) -> str:
        lines: list[str] = []
        for name, text in _HELP.items():
            lines += _metric(f"journeys_{name}_total", "counter", text, [("", self.counts[name])])
        lines += _metric(
            "journeys_rejected_by_code_total", "counter", "Rejections per reason code.",
            [(f'code="{c}"', n) for c, n in sorted(self.rejected_by_code.items())],
        )  # fmt: skip
        lines += _metric(
            "journeys_rows_by_table_total", "counter", "Rows written per table.",
            [(f'table="{t}"', n) for t, n in sorted(self.rows_by_table.items())],
        )  # fmt: skip
        lines += _metric(
            "journeys_sink_buffered_rows", "gauge", "Rows waiting for ClickHouse.",
            [("", self.buffered_rows)],
        )  # fmt: skip
        lines += _metric(
            "journeys_consumer_lag", "gauge", "Messages behind the partition's end.",
            [(f'partition="{p}"', n) for p, n in sorted(self.consumer_lag.items())],
        )  # fmt: skip
        return "\n".join(lines + self._histogram()) + "\n"

    def _histogram(self) -> list[str]:
        name = "journeys_event_to_stored_seconds"
        lines = [f"# HELP {name} Event produced to row stored.", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, count in zip(LATENCY_BUCKETS, self.latency_counts, strict=False):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
        total = sum(self.latency_counts)
        lines.append(f'{name}_bucket{{le="+Inf"}} {total}')
        lines.append(f"{name}_sum {self.latency_sum:.6f}")
        lines.append(f"{name}_count {total}")
        return lines


def _metric(name: str, kind: str, text: str, samples: list[tuple[str, int]]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    lines += [
        f"{name}{{{labels}}} {value}" if labels else f"{name} {value}" for labels, value in samples
    ]
    return lines
