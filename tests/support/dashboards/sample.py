"""A realistic, deterministic sample of every table the dashboards read, in 0001's columns.

Used by the dashboard tests where they need a known answer (the simulated company through the
worker's core, `engine_rows`, gives realistic rows but no planted cell), and handy for trying
the dashboards on an empty ClickHouse. One department x stage cell (`hot_cell`) is made to
break more often, so the heatmap has a known answer. Times are relative to `anchor` (normally
now), because operations panels look at "the last hour" and "the next hours". Impacts, the
front desk, the bands and the model version are the score model's, so the sample follows it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from pipeline.journey import DEFAULT_MODEL_PATH, ScoreModel, load_score_model
from pipeline.store import Store
from pipeline.store.models import LIVE, record_model
from pipeline.store.refresh import refresh_now
from pipeline.stream.health import metric_row

Row = dict[str, Any]
Kind = tuple[str, float, str]  # signal, impact, reason
DEPARTMENTS = ["sales", "customer_service", "maintenance", "billing", "delivery"]
STAGES = ["purchase", "onboarding", "delivery", "usage", "service", "billing"]
# (signal, reason) drawn for ordinary cells: the first three for troubled journeys, the
# fourth for the hot cell. Their impacts are the score model's.
DRAWN_SIGNALS = [
    ("repeat_contact", "customer contacted again within 7 days, previous contact unresolved"),
    ("context_lost", "handoff without context"),
    ("long_wait", "waited 2 thresholds on phone"),
    ("rework", "repeat repair"),
    ("promise_kept", "kept on time"),
    ("first_contact_resolution", "resolved at first contact"),
    ("proactive_update", "told the customer before being asked"),
]
WAITED_THRESHOLDS = 2  # the drawn long_wait's reason says so


def signal_impact(model: ScoreModel, signal: str) -> float:
    """The points `signal` moves a journey by under `model` (long_wait: a 2-threshold wait)."""
    if signal == "long_wait":
        return max(WAITED_THRESHOLDS * model.long_wait_step, model.long_wait_max)
    return model.impacts[signal]


@dataclass
class Sample:
    touchpoints: list[Row] = field(default_factory=list)
    journeys: list[Row] = field(default_factory=list)
    journey_signals: list[Row] = field(default_factory=list)
    dead_letters: list[Row] = field(default_factory=list)
    pipeline_metrics: list[Row] = field(default_factory=list)
    alerts: list[Row] = field(default_factory=list)

    def tables(self) -> dict[str, list[Row]]:
        return {
            "touchpoints": self.touchpoints,
            "journeys": self.journeys,
            "journey_signals": self.journey_signals,
            "dead_letters": self.dead_letters,
            "pipeline_metrics": self.pipeline_metrics,
            "alerts": self.alerts,
        }


def insert_sample(store: Store, sample: Sample, batch: int) -> None:
    """Insert every table in batches of `batch` rows (a flush writes each table in one
    insert), then refresh the scheduled aggregates instead of waiting for their minute."""
    for table, rows in sample.tables().items():
        for start in range(0, len(rows), batch):
            store.insert(table, rows[start : start + batch])
    refresh_now(store)
    # What a worker starting with the built-in model records (migration 0007): the
    # dashboards' model variable's first option and the alert rules' version.
    record_model(store, load_score_model().version, LIVE, DEFAULT_MODEL_PATH.read_text())


def _provenance(topic: str, offset: int, at: datetime) -> Row:
    return {"_topic": topic, "_partition": offset % 4, "_offset": offset, "_ingested_at": at}


class _Builder:
    def __init__(
        self, anchor: datetime, hot_cell: tuple[str, str], seed: int, model: ScoreModel
    ) -> None:
        self.anchor = anchor
        self.model = model
        self.signals: list[Kind] = [(s, signal_impact(model, s), why) for s, why in DRAWN_SIGNALS]
        self.hot_cell = hot_cell
        self.random = random.Random(seed)
        self.sample = Sample()
        self.offset = 0

    def touchpoint(self, journey: str, customer: str, at: datetime, **fields: Any) -> str:
        self.offset += 1
        event_id = f"{journey}-e{self.offset}"
        attributes = fields.pop("attributes", {})
        lag = timedelta(milliseconds=self.random.randint(50, 4000))
        self.sample.touchpoints.append(
            {
                "event_id": event_id,
                "occurred_at": at,
                "customer_id": customer,
                "journey_id": journey,
                "channel": self.random.choice(["phone", "email", "chat", "web"]),
                "attributes": orjson.dumps(attributes).decode(),
                "schema_version": 1,
                **fields,
                **_provenance("touchpoints", self.offset, min(at + lag, self.anchor)),
            }
        )
        return event_id

    def signal(self, journey: str, customer: str, kind: Kind, **fields: Any) -> Row:
        name, impact, reason = kind
        n = len(self.sample.journey_signals)
        row = {
            "signal_id": f"{journey}:{name}:{n}",
            "journey_id": journey,
            "customer_id": customer,
            "signal": name,
            "impact": impact,
            "reason": reason,
            "score_model": self.model.version,
            "active": 1,
            "version": 1,
            **fields,
            **_provenance("journeys.scores", n, self.anchor),
        }
        self.sample.journey_signals.append(row)
        return row

    def journey(self, number: int) -> None:
        customer, journey = f"c-{number:04d}", f"j-{number:04d}"
        start = self.anchor - timedelta(minutes=self.random.randint(30, 6 * 24 * 60))
        signals: list[Row] = []
        at = start
        # A quarter of journeys go badly everywhere, so every band is present.
        troubled = self.random.random() < 0.25
        for _ in range(self.random.randint(3, 7) + 4 * troubled):
            department, stage = self.random.choice(DEPARTMENTS), self.random.choice(STAGES)
            at = min(at + timedelta(minutes=self.random.randint(1, 300)), self.anchor)
            event = self.touchpoint(
                journey, customer, at, department=department, stage=stage, type="contact",
                attributes={"reason": "question", "resolved": self.random.random() < 0.5},
            )  # fmt: skip
            hot = (department, stage) == self.hot_cell
            if self.random.random() < (0.9 if hot or troubled else 0.35):
                pool = self.signals[:3] if troubled else self.signals
                kind = self.signals[3] if hot else self.random.choice(pool)
                signals.append(
                    self.signal(
                        journey, customer, kind, department=department, stage=stage,
                        effective_at=at, evidence_event_ids=[event],
                    )
                )  # fmt: skip
        self.promise(journey, customer, start, signals)
        self.case(journey, customer, start)
        self.close(number, journey, customer, start, at, signals)

    def promise(self, journey: str, customer: str, start: datetime, signals: list[Row]) -> None:
        department = self.random.choice(DEPARTMENTS)
        due = self.anchor + timedelta(hours=self.random.randint(-48, 20))
        made = min(start, due - timedelta(hours=1))
        fields = {"department": department, "stage": self.random.choice(STAGES)}
        promise = f"p-{journey}"
        event = self.touchpoint(
            journey, customer, made, type="promise_made", **fields,
            attributes={"promise_id": promise, "due_at": due.isoformat()},
        )  # fmt: skip
        if due < self.anchor and self.random.random() < 0.5:
            kind = ("promise_broken", signal_impact(self.model, "promise_broken"),
                    "due_at passed with no promise_kept")  # fmt: skip
            signals.append(
                self.signal(
                    journey, customer, kind, effective_at=due, evidence_event_ids=[event], **fields
                )
            )
        elif self.random.random() < 0.5:
            kept = min(made + timedelta(minutes=30), self.anchor)
            self.touchpoint(
                journey, customer, kept, type="promise_kept", department="delivery",
                stage="service", attributes={"promise_id": promise},
            )  # fmt: skip

    def case(self, journey: str, customer: str, start: datetime) -> None:
        department = self.random.choice(DEPARTMENTS)
        opened = start + timedelta(minutes=5)
        attributes = {"case_id": f"case-{journey}"}
        fields = {"department": department, "stage": "service", "attributes": attributes}
        self.touchpoint(journey, customer, opened, type="case_opened", **fields)
        if self.random.random() < 0.7:
            resolved = min(opened + timedelta(hours=self.random.randint(1, 72)), self.anchor)
            self.touchpoint(journey, customer, resolved, type="case_resolved", **fields)

    def close(
        self, number: int, journey: str, customer: str, start: datetime, last: datetime,
        signals: list[Row],
    ) -> None:  # fmt: skip
        impacts = [s["impact"] for s in signals]
        score = max(0.0, min(100.0, 100 + sum(impacts)))
        lost = [s for s in signals if s["impact"] < 0]
        worst = min(lost, key=lambda s: s["impact"]) if lost else {"department": "", "stage": ""}
        updated = self.anchor - timedelta(minutes=number % 180)
        row = {
            "journey_id": journey, "customer_id": customer, "started_at": start,
            "last_event_at": last, "updated_at": updated, "status": "open",
            "score": score, "operational_score": score, "survey_score": None,
            "band": self.model.band(score),
            "touchpoint_count": 5, "lost_points": -sum(s["impact"] for s in lost),
            "gained_points": sum(i for i in impacts if i > 0),
            "lost_points_beyond_front_desk": -sum(
                s["impact"] for s in lost if s["department"] not in self.model.front_desk
            ),
            "worst_department": worst["department"], "worst_stage": worst["stage"],
            "score_model": self.model.version, "version": len(signals) + 1,
            **_provenance("journeys.scores", number, updated),
        }  # fmt: skip
        # An older version first: readers must take the latest, not the first or a sum.
        self.sample.journeys.append(
            {**row, "version": 0, "score": 100.0, "band": "good", "updated_at": start}
        )
        self.sample.journeys.append(row)

    def rejections(self, count: int) -> None:
        codes = ["missing_field", "bad_timestamp", "unknown_type", "not_json"]
        for n in range(count):
            department = self.random.choice([*DEPARTMENTS, ""])
            at = self.anchor - timedelta(minutes=self.random.randint(0, 3 * 24 * 60))
            code = self.random.choice(codes)
            self.sample.dead_letters.append(
                {
                    "received_at": at, "reason_code": code, "department": department,
                    "reason": f"{code}: field 'occurred_at' expected RFC 3339 with offset",
                    "raw": '{"event_id": "x", "occurred_at": "2026-01-01 10:00"}',
                    "source_topic": "touchpoints", "source_partition": n % 4,
                    "source_offset": 10_000 + n, **_provenance("touchpoints.dlq", n, at),
                }
            )  # fmt: skip

    def metrics(self) -> None:
        for minutes in range(0, 6 * 60, 5):
            at = self.anchor - timedelta(minutes=minutes)
            for partition in range(4):
                lag = self.random.randint(0, 500)
                self.sample.pipeline_metrics.append(
                    metric_row("consumer_lag", lag, "worker-1", at, "touchpoints", partition)
                )
            retries = self.random.randint(0, 2)
            self.sample.pipeline_metrics.append(metric_row("sink_retries", retries, "worker-1", at))


def build_sample(
    anchor: datetime,
    journeys: int = 300,
    hot_cell: tuple[str, str] = ("delivery", "usage"),
    seed: int = 7,
    model: ScoreModel | None = None,
) -> Sample:
    """`journeys` journeys over the 6 days before `anchor`, rejections, pipeline metrics,
    scored as `model` (default: the packaged score model) scores them."""
    if anchor.tzinfo is None:
        raise ValueError(f"anchor={anchor!r}: expected a timezone-aware datetime")
    builder = _Builder(anchor, hot_cell, seed, model or load_score_model())
    for number in range(journeys):
        builder.journey(number)
    builder.rejections(max(journeys // 5, 1))
    builder.metrics()
    return builder.sample
