"""The collector's counters, in Prometheus text format (prometheus-client).

Accounting, as the worker's: every event of an authorised request of a readable size is
either accepted or rejected (`journeys_collector_events_total{outcome}`), and the rejected
ones are counted by code. A request answered 503 counts its events under `unavailable`:
not accepted, whatever reached Kafka (the department re-sends them; the worker counts a
re-sent event once).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds from a request's first byte read to its answer; Kafka's acknowledgement included.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Distinct departments labelled before the rest are counted as "(other)": a token for every
# department could otherwise grow the label set without bound.
MAX_DEPARTMENTS = 500
OTHER = "(other)"


class CollectorMetrics:
    def __init__(self) -> None:
        # One registry per collector: tests build several in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("journeys_collector_requests", "Requests answered, by status.",
                                ["status"], registry=r)  # fmt: skip
        self.events = Counter("journeys_collector_events",
                              "Events received in requests, by outcome (accepted, rejected, "
                              "unavailable: answered 503).", ["outcome"], registry=r)  # fmt: skip
        self.rejected = Counter("journeys_collector_rejected_by_code",
                                "Events rejected (and dead-lettered), by code.", ["code"],
                                registry=r)  # fmt: skip
        self.accepted = Counter("journeys_collector_accepted_by_department",
                                "Events accepted, by department.", ["department"],
                                registry=r)  # fmt: skip
        self.seconds = Histogram("journeys_collector_request_seconds",
                                 "Time to answer a request of events, Kafka's acknowledgement "
                                 "included.", buckets=REQUEST_BUCKETS, registry=r)  # fmt: skip
        self.pending = Gauge("journeys_collector_pending_events",
                             "Events sent to Kafka and not yet acknowledged.",
                             registry=r)  # fmt: skip
        self._departments: set[str] = set()

    def answered(self, status: int) -> None:
        self.requests.labels(str(status)).inc()

    def judged(self, accepted: dict[str, int], rejected: dict[str, int]) -> None:
        """Count one request's verdicts: accepted per department, rejected per code."""
        self.events.labels("accepted").inc(sum(accepted.values()))
        self.events.labels("rejected").inc(sum(rejected.values()))
        for department, count in accepted.items():
            self.accepted.labels(self._department_label(department)).inc(count)
        for code, count in rejected.items():
            self.rejected.labels(code).inc(count)

    def unavailable(self, events: int) -> None:
        self.events.labels("unavailable").inc(events)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def _department_label(self, department: str) -> str:
        if department in self._departments:
            return department
        if len(self._departments) < MAX_DEPARTMENTS:
            self._departments.add(department)
            return department
        return OTHER
