"""Table rows as the pipeline stores them: messages -> the worker's core -> rows.

The dashboard tests feed the simulator's traffic (`pipeline.simulate`) through the stream
worker's Faust-free core (`pipeline.stream.offline`: the processor with its validator,
de-duplication, journey engine, event-time clock and row builders), in batches as the
worker takes them, each taken in a little after its last message was sent. A last clock
tick at `now` fires the deadline signals (promise_broken, feedback_unanswered, ...) due by then. The
`pipeline_metrics` rows come from the worker's health sampler (`pipeline.stream.health`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from pipeline.journey import ScoreModel, load_score_model
from pipeline.simulate import Delivery, SimulationConfig, default_start, simulate
from pipeline.stream.health import HealthSampler
from pipeline.stream.metrics import Metrics
from pipeline.stream.offline import offline_rows
from tests.support.dashboards.macros import QueryContext
from tests.support.dashboards.sample import Sample

PARTITIONS = 4  # of the pipeline_metrics samples
# What a message spends between being sent and being stored (batching, commit).
STORE_DELAY = timedelta(milliseconds=800)


def pipeline_rows(
    deliveries: Iterable[Delivery],
    now: datetime,
    model: ScoreModel | None = None,
    batch: int = 500,
) -> Sample:
    """The rows the worker would have stored for the messages sent by `now`."""
    taken = ((d.value, min(d.sent_at + STORE_DELAY, now)) for d in deliveries if d.sent_at <= now)
    sample = Sample()
    tables = sample.tables()
    for table, rows in offline_rows(taken, now, model, batch=batch).items():
        tables[table].extend(rows)
    return sample


def metric_samples(now: datetime, hours: int = 6) -> list[dict[str, Any]]:
    """Health samples every 5 minutes for `hours` before `now`, as the worker's sampler
    writes them: consumer lag per partition, and sink retries since the previous sample."""
    metrics, sampler = Metrics(), HealthSampler("worker-1", "touchpoints")
    rows = []
    for minutes in range(0, hours * 60, 5):
        metrics.consumer_lag = {str(p): 40 * p + minutes % 17 for p in range(PARTITIONS)}
        metrics.add("sink_retries", int(minutes % 3 == 0))
        rows += sampler.rows(metrics, now - timedelta(minutes=minutes))
    return rows


@dataclass(frozen=True)
class SimulatedMonth:
    """A simulated company's month as the worker stores it, cut at `now`, and the Grafana
    context the dashboard tests ask it in: the last 7 days, the worst journey selected."""

    now: datetime
    sample: Sample

    @cached_property
    def context(self) -> QueryContext:
        worst = max(self.sample.journeys, key=lambda journey: journey["lost_points"])
        variables = {"department": "maintenance", "customer": worst["customer_id"],
                     "journey": worst["journey_id"], "due_within_hours": "24",
                     "model": load_score_model().version}  # fmt: skip
        return QueryContext(self.now - timedelta(days=7), self.now + timedelta(minutes=1),
                            timedelta(minutes=5), variables)  # fmt: skip


def simulate_month(customers: int = 800) -> SimulatedMonth:
    """A simulated company's month through the real validator and journey engine. The
    simulated period runs ten days past now (longer than any journey) and is cut at now, so
    now is mid-traffic: journeys under way, promises falling due."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = default_start(30, now + timedelta(days=10))
    config = SimulationConfig(customers=customers, days=30, start=start)
    sample = pipeline_rows(simulate(config)[0], now)
    sample.pipeline_metrics = metric_samples(now)
    return SimulatedMonth(now, sample)
