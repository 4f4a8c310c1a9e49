"""Table rows as the pipeline stores them: messages -> the worker's core -> rows.

The dashboard tests feed the simulator's traffic (`pipeline.simulate`) through the stream
worker's Faust-free core (`pipeline.stream.processor.JourneyProcessor`: the contract
validator, de-duplication, the journey engine, the event-time clock and the row builders of
`pipeline.stream.rows`), in batches as the worker takes them, and keep the rows it hands to
the ClickHouse sink. One partition, so no message needs re-routing. A last clock tick at `now`
fires the deadline signals (promise_broken, feedback_unanswered, ...) due by then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pipeline.contract import Validator
from pipeline.dashboards.sample import Sample
from pipeline.journey import ScoreModel, load_score_model
from pipeline.simulate import Delivery
from pipeline.stream.book_cache import BookCache
from pipeline.stream.clock import to_us
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor

PARTITIONS = 4  # of the pipeline_metrics samples
# What a message spends between being sent and being stored (batching, commit).
STORE_DELAY = timedelta(milliseconds=800)
_DAY_US = 86_400 * 1_000_000


def _processor(model: ScoreModel) -> JourneyProcessor:
    return JourneyProcessor(
        model, Validator(), BookCache(lambda key: None), lambda key: 0,
        touchpoints_topic="touchpoints", alert_horizon_s=3600 * 24,
        dedup=RecentEventIds(_DAY_US, 100_000), metrics=Metrics(),
    )  # fmt: skip


def _keep(sample: Sample, rows: dict[str, list[dict[str, Any]]]) -> None:
    tables = sample.tables()
    for table, collected in rows.items():
        tables[table].extend(collected)


def _batches(deliveries: Sequence[Delivery], size: int) -> Iterable[Sequence[Delivery]]:
    for start in range(0, len(deliveries), size):
        yield deliveries[start : start + size]


def pipeline_rows(
    deliveries: Iterable[Delivery],
    now: datetime,
    model: ScoreModel | None = None,
    batch: int = 500,
) -> Sample:
    """The rows the worker would have stored for the messages sent by `now`."""
    processor, sample = _processor(model or load_score_model()), Sample()
    sent = [d for d in deliveries if d.sent_at <= now]
    offset = 0
    for chunk in _batches(sent, batch):
        inbound = [Inbound("touchpoints", 0, offset + i, d.value) for i, d in enumerate(chunk)]
        offset += len(chunk)
        stored_at = min(chunk[-1].sent_at + STORE_DELAY, now)
        _keep(sample, processor.process(0, inbound, stored_at).rows)
    tick = Inbound("touchpoints", 0, offset, b"", tick_us=to_us(now))
    _keep(sample, processor.process(0, [tick], now).rows)
    return sample


def metric_samples(now: datetime, hours: int = 6) -> list[dict[str, Any]]:
    """Worker metrics (consumer lag, sink retries) every 5 minutes, until the worker writes
    its own: see pipeline.dashboards.metrics."""
    from pipeline.dashboards.metrics import metric_row

    rows = []
    for minutes in range(0, hours * 60, 5):
        at = now - timedelta(minutes=minutes)
        for partition in range(PARTITIONS):
            lag = 40.0 * partition + minutes % 17
            rows.append(metric_row("consumer_lag", lag, "worker-1", at, "touchpoints", partition))
        rows.append(metric_row("sink_retries", float(minutes % 3 == 0), "worker-1", at))
    return rows
