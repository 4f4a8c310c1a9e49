"""A realistic, deterministic sample of every table the dashboards read, in 0001's columns.

Used by the dashboard tests (every panel query must run on it and return rows) and handy for
trying the dashboards on an empty ClickHouse. One department x stage cell (`hot_cell`) is made
to break more often, so the heatmap has a known answer. Times are relative to `anchor`
(normally now), because operations panels look at "the last hour" and "the next hours".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

Row = dict[str, Any]
DEPARTMENTS = ["sales", "customer_service", "maintenance", "billing", "delivery"]
STAGES = ["purchase", "onboarding", "delivery", "usage", "service", "billing"]
FRONT_DESK = {"sales", "customer_service"}
# (signal, impact, reason) drawn for ordinary cells.
SIGNALS = [
    ("repeat_contact", -8.0, "customer contacted again within 7 days, previous contact unresolved"),
    ("context_lost", -6.0, "handoff without context"),
    ("long_wait", -4.0, "waited 2 thresholds on phone"),
    ("rework", -10.0, "repeat repair"),
    ("promise_kept", 2.0, "kept on time"),
    ("first_contact_resolution", 3.0, "resolved at first contact"),
    ("proactive_update", 4.0, "told the customer before being asked"),
]


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


def _provenance(topic: str, offset: int, at: datetime) -> Row:
    return {"_topic": topic, "_partition": offset % 4, "_offset": offset, "_ingested_at": at}


class _Builder:
    def __init__(self, anchor: datetime, hot_cell: tuple[str, str], seed: int) -> None:
        self.anchor = anchor
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

    def signal(
        self, journey: str, customer: str, kind: tuple[str, float, str], **fields: Any
    ) -> Row:
        name, impact, reason = kind
        n = len(self.sample.journey_signals)
        row = {
            "signal_id": f"{journey}:{name}:{n}",
            "journey_id": journey,
            "customer_id": customer,
            "signal": name,
            "impact": impact,
            "reason": reason,
            "score_model": "v1",
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
                pool = SIGNALS[:3] if troubled else SIGNALS
                kind = SIGNALS[3] if hot else self.random.choice(pool)
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
            kind = ("promise_broken", -15.0, "due_at passed with no promise_kept")
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
            "band": "good" if score >= 75 else "poor" if score < 50 else "neutral",
            "touchpoint_count": 5, "lost_points": -sum(s["impact"] for s in lost),
            "gained_points": sum(i for i in impacts if i > 0),
            "lost_points_beyond_front_desk": -sum(
                s["impact"] for s in lost if s["department"] not in FRONT_DESK
            ),
            "worst_department": worst["department"], "worst_stage": worst["stage"],
            "score_model": "v1", "version": len(signals) + 1,
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
                self.sample.pipeline_metrics.append(
                    {"time": at, "worker": "worker-1", "name": "consumer_lag",
                     "topic": "touchpoints", "partition": partition,
                     "value": float(self.random.randint(0, 500))}
                )  # fmt: skip
            self.sample.pipeline_metrics.append(
                {"time": at, "worker": "worker-1", "name": "sink_retries", "topic": "",
                 "partition": -1, "value": float(self.random.randint(0, 2))}
            )  # fmt: skip


def build_sample(
    anchor: datetime,
    journeys: int = 300,
    hot_cell: tuple[str, str] = ("delivery", "usage"),
    seed: int = 7,
) -> Sample:
    """`journeys` journeys over the 6 days before `anchor`, rejections, pipeline metrics."""
    if anchor.tzinfo is None:
        raise ValueError(f"anchor={anchor!r}: expected a timezone-aware datetime")
    builder = _Builder(anchor, hot_cell, seed)
    for number in range(journeys):
        builder.journey(number)
    builder.rejections(max(journeys // 5, 1))
    builder.metrics()
    return builder.sample
