"""Score simulated messages in-process with the pure journey engine, into the public tables.

The stream worker does this through Kafka and Faust; here the same validator and engine run
in one loop, so tests of what *reads* the tables (the report) get realistic rows without a
broker, and so anyone can preview a simulation's outcome. Rows follow
`0001_core_tables.sql`; provenance says `_topic = 'offline'`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from pipeline.contract import Rejection, validate
from pipeline.journey import (
    JourneyBook,
    JourneyScore,
    ScoreModel,
    Signal,
    add,
    advance,
    book_key,
)
from pipeline.simulate.faults import Delivery
from pipeline.store import Store

TOPIC = "offline"


@dataclass
class OfflineTables:
    touchpoints: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    journeys: dict[str, dict[str, Any]] = field(default_factory=dict)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0

    def write(self, store: Store) -> None:
        store.insert("touchpoints", self.touchpoints)
        store.insert("dead_letters", self.dead_letters)
        store.insert("journeys", list(self.journeys.values()))
        store.insert("journey_signals", list(self.signals.values()))


def score_offline(
    deliveries: Sequence[Delivery], model: ScoreModel, until: datetime
) -> OfflineTables:
    """Validate, assemble and score every message; advance event time to `until` at the end."""
    tables = OfflineTables()
    books: dict[str, JourneyBook] = {}
    received_at = datetime.now(UTC)
    for offset, delivery in enumerate(deliveries):
        result = validate(delivery.value, now=until)
        provenance = _provenance(offset, received_at)
        if isinstance(result, Rejection):
            tables.dead_letters.append(_dead_letter(result, delivery, provenance))
            continue
        book = books.setdefault(book_key(result), JourneyBook.for_touchpoint(result))
        changes = add(book, result, model)
        if changes.assignment is not None:
            row = msgspec.to_builtins(result)
            row.update(journey_id=changes.assignment.journey_id, stage=changes.assignment.stage)
            row["channel"] = row.get("channel") or ""
            row["attributes"] = orjson.dumps(row.get("attributes", {})).decode()
            tables.touchpoints.append({**row, **provenance})
        _apply(tables, changes.scores, changes.appeared, changes.retracted, provenance)
        for retired in changes.retired:
            tables.journeys.pop(retired, None)
    provenance = _provenance(len(deliveries), received_at)
    for book in books.values():
        changes = advance(book, until, model)
        _apply(tables, changes.scores, changes.appeared, changes.retracted, provenance)
    return tables


def _provenance(offset: int, received_at: datetime) -> dict[str, Any]:
    return {"_topic": TOPIC, "_partition": 0, "_offset": offset, "_ingested_at": received_at}


def _dead_letter(
    rejection: Rejection, delivery: Delivery, provenance: dict[str, Any]
) -> dict[str, Any]:
    return {
        "received_at": provenance["_ingested_at"],
        "reason_code": rejection.code,
        "reason": rejection.message,
        "department": rejection.department,
        "raw": delivery.value.decode(errors="replace"),
        "source_topic": TOPIC,
        "source_partition": 0,
        "source_offset": provenance["_offset"],
        **provenance,
    }


def _apply(
    tables: OfflineTables,
    scores: list[JourneyScore],
    appeared: list[Signal],
    retracted: list[Signal],
    provenance: dict[str, Any],
) -> None:
    tables.version += 1
    for score in scores:
        row = msgspec.to_builtins(score)
        row.pop("signals", None)
        row.pop("overflow_events", None)
        tables.journeys[score.journey_id] = {**row, "version": tables.version, **provenance}
    for signals, active in ((appeared, 1), (retracted, 0)):
        for signal in signals:
            row = msgspec.to_builtins(signal)
            tables.signals[signal.signal_id] = {
                **row,
                "active": active,
                "version": tables.version,
                **provenance,
            }
