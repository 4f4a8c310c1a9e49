"""Table rows as the pipeline stores them: messages -> the worker's core -> rows.

The dashboard tests feed the simulator's traffic (`pipeline.simulate`) through the stream
worker's Faust-free core (`pipeline.stream.offline`: the processor with its validator,
de-duplication, journey engine, event-time clock and row builders), in batches as the
worker takes them, each taken in a little after its last message was sent. A last clock
tick at `now` fires the deadline signals (promise_broken, feedback_unanswered, ...) due by
then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pipeline.dashboards.sample import Sample
from pipeline.journey import ScoreModel
from pipeline.simulate import Delivery
from pipeline.stream.offline import offline_rows

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
