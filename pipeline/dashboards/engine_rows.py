"""Table rows as the pipeline produces them: messages -> contract validator -> journey engine.

The dashboard tests feed the simulator's traffic (`pipeline.simulate`) through the real
validator (`pipeline.contract.validate`) and the real journey engine (`pipeline.journey`)
and store what comes out in 0001's columns, the way the stream's sink does: accepted
touchpoints with their assigned journey and resolved stage, rejections with their raw bytes,
every journey snapshot with a rising version, every appeared signal (active = 1) and every
retracted one (active = 0). At the end each book's event-time clock is advanced to `now`, so
deadline signals (promise_broken, feedback_unanswered, ...) fire as they would live.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson

from pipeline.contract import Rejection, Touchpoint, validate
from pipeline.dashboards.sample import Row, Sample
from pipeline.journey import Changes, JourneyBook, ScoreModel, add, advance, load_score_model
from pipeline.simulate import Delivery

PARTITIONS = 4
# What a touchpoint spends between being sent and being stored (batching, commit).
STORE_DELAY = timedelta(milliseconds=800)


@dataclass
class _Position:
    offset: int
    partition: int
    ingested_at: datetime

    def provenance(self, topic: str) -> Row:
        return {"_topic": topic, "_partition": self.partition, "_offset": self.offset,
                "_ingested_at": self.ingested_at}  # fmt: skip


class _Sink:
    def __init__(self, model: ScoreModel) -> None:
        self.model = model
        self.books: dict[str, JourneyBook] = {}
        self.sample = Sample()
        self.version = 0

    def message(self, delivery: Delivery, position: _Position, now: datetime) -> None:
        result = validate(delivery.value, now=now)
        if isinstance(result, Rejection):
            self.sample.dead_letters.append(_dead_letter(delivery, result, position))
            return
        book = self.books.setdefault(result.key, JourneyBook.for_touchpoint(result))
        changes = add(book, result, self.model)
        if changes.assignment is not None:
            self.sample.touchpoints.append(
                _touchpoint(result, changes.assignment.journey_id, changes.assignment.stage)
                | position.provenance("touchpoints")
            )
        self.changes(changes, position)

    def changes(self, changes: Changes, position: _Position) -> None:
        for score in changes.scores:
            self.version += 1
            row = msgspec.to_builtins(score, builtin_types=(datetime,))
            row.pop("signals"), row.pop("overflow_events", None)
            self.sample.journeys.append(
                row | {"version": self.version} | position.provenance("journeys.scores")
            )
        for signals, active in ((changes.appeared, 1), (changes.retracted, 0)):
            for signal in signals:
                self.version += 1
                row = msgspec.to_builtins(signal, builtin_types=(datetime,))
                self.sample.journey_signals.append(
                    row | {"active": active, "version": self.version}
                    | position.provenance("journeys.scores")
                )  # fmt: skip

    def advance_all(self, now: datetime, position: _Position) -> None:
        for book in self.books.values():
            self.changes(advance(book, now, self.model), position)


def _touchpoint(touchpoint: Touchpoint, journey_id: str, stage: str) -> Row:
    return {
        "event_id": touchpoint.event_id,
        "occurred_at": touchpoint.occurred_at,
        "customer_id": touchpoint.customer_id,
        "journey_id": journey_id,
        "department": touchpoint.department,
        "stage": stage,
        "channel": touchpoint.channel or "",
        "type": touchpoint.type,
        "attributes": orjson.dumps(touchpoint.attributes).decode(),
        "schema_version": touchpoint.schema_version,
    }


def _dead_letter(delivery: Delivery, rejection: Rejection, position: _Position) -> Row:
    return {
        "received_at": position.ingested_at,
        "reason_code": rejection.code,
        "reason": rejection.message,
        "department": rejection.department,
        "raw": delivery.value.decode("utf-8", "replace"),
        "source_topic": "touchpoints",
        "source_partition": position.partition,
        "source_offset": position.offset,
    } | position.provenance("touchpoints.dlq")


def pipeline_rows(
    deliveries: Iterable[Delivery], now: datetime, model: ScoreModel | None = None
) -> Sample:
    """The rows the pipeline would have stored for these messages by `now`."""
    sink = _Sink(model or load_score_model())
    position = _Position(0, 0, now)
    for offset, delivery in enumerate(deliveries):
        if delivery.sent_at > now:
            continue  # not sent yet
        partition = zlib.crc32(delivery.key) % PARTITIONS
        position = _Position(offset, partition, min(delivery.sent_at + STORE_DELAY, now))
        sink.message(delivery, position, now)
    sink.advance_all(now, _Position(position.offset, 0, now))
    return sink.sample


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
