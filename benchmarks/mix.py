"""A realistic touchpoint mix for the benchmarks, independent of the simulator.

Journeys of a car-service-like company: orders (sales -> delivery), service cases (customer
service -> maintenance with handoffs, appointments, rework) and billing problems (billing
disputes, corrected invoices), a minority answering a survey, most keyed by a case or order
number and the rest by customer. Journeys overlap in time as in production, so the worker
holds many open journeys at once. A small share of events is malformed or re-sent.

`journeys simulate` is the product's generator; `benchmarks.events` prefers it and falls
back to this one so the suite runs on its own.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]
Step = tuple[str, str, str, str]  # type, department, stage, channel

ORDER: tuple[Step, ...] = (
    ("order_placed", "sales", "purchase", "web"),
    ("promise_made", "delivery", "delivery", "email"),
    ("order_delayed", "delivery", "delivery", "email"),
    ("contact", "customer_service", "delivery", "phone"),
    ("promise_kept", "delivery", "delivery", "field"),
    ("order_delivered", "delivery", "delivery", "field"),
    ("survey_response", "sales", "delivery", "email"),
)
SERVICE: tuple[Step, ...] = (
    ("contact", "customer_service", "service", "phone"),
    ("case_opened", "customer_service", "service", "phone"),
    ("handoff", "customer_service", "service", "phone"),
    ("appointment_scheduled", "maintenance", "service", "phone"),
    ("promise_made", "maintenance", "service", "phone"),
    ("appointment_completed", "maintenance", "service", "field"),
    ("rework", "maintenance", "service", "field"),
    ("contact", "customer_service", "service", "chat"),
    ("case_resolved", "maintenance", "service", "field"),
    ("feedback_received", "customer_service", "service", "web"),
    ("feedback_answered", "customer_service", "service", "email"),
)
BILLING: tuple[Step, ...] = (
    ("invoice_issued", "billing", "billing", "mail"),
    ("contact", "customer_service", "billing", "phone"),
    ("billing_dispute_opened", "billing", "billing", "phone"),
    ("invoice_corrected", "billing", "billing", "mail"),
    ("billing_dispute_resolved", "billing", "billing", "email"),
    ("proactive_update", "billing", "billing", "email"),
    ("survey_response", "billing", "billing", "email"),
    ("journey_closed", "billing", "billing", "web"),
)
TEMPLATES = ((ORDER, 0.4), (SERVICE, 0.35), (BILLING, 0.25))
START = datetime(2026, 3, 1, tzinfo=UTC)


def attributes(kind: str, journey: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    """The attributes the contract requires (and a few it allows) for this event type."""
    if kind == "contact":
        waits = {"wait_seconds": rng.randint(5, 900), "handle_seconds": rng.randint(60, 1200)}
        return {"reason": "question", "resolved": rng.random() < 0.6, **waits}
    if kind == "handoff":
        return {"to_department": "maintenance", "context_transferred": rng.random() < 0.7}
    if kind in ("promise_made", "promise_kept"):
        due = at + timedelta(days=rng.randint(1, 5))
        return {"promise_id": f"{journey}-p", "due_at": due.isoformat(), "description": "visit"}
    if kind.startswith(("feedback_",)):
        return {"feedback_id": f"{journey}-f", "sentiment": round(rng.uniform(-1, 1), 2)}
    if kind == "survey_response":
        return {"csat": rng.randint(1, 5), "nps": rng.randint(0, 10)}
    if kind.startswith(("invoice_",)):
        return {"invoice_id": f"{journey}-i", "amount": round(rng.uniform(20, 900), 2)}
    if kind.startswith(("order_",)):
        return {"order_id": journey, "promised_for": (at + timedelta(days=3)).isoformat()}
    if kind.startswith(("case_", "billing_dispute")):
        return {"case_id": journey, "dispute_id": journey}
    if kind.startswith("appointment_"):
        return {"appointment_id": f"{journey}-a", "scheduled_for": at.isoformat()}
    if kind == "proactive_update":
        return {"about": "invoice corrected"}
    if kind == "journey_closed":
        return {"outcome": "resolved"}
    return {"reason": "repeat repair"}


def journey_events(number: int, rng: random.Random, begins: datetime) -> list[Event]:
    steps = rng.choices([t for t, _ in TEMPLATES], weights=[w for _, w in TEMPLATES])[0]
    customer = f"cust-{rng.randint(1, max(number // 2, 1)):08d}"
    keyed = rng.random() < 0.75
    journey = f"case-{number:09d}"
    # Not every journey walks every step: drop some, as real journeys differ.
    chosen = [s for i, s in enumerate(steps) if i == 0 or rng.random() < 0.8]
    events, at = [], begins
    for index, (kind, department, stage, channel) in enumerate(chosen):
        at += timedelta(minutes=rng.randint(5, 60 * 24))
        event: Event = {
            "event_id": f"{journey}-{index}",
            "occurred_at": at.isoformat(),
            "customer_id": customer,
            "department": department,
            "type": kind,
            "stage": stage,
            "channel": channel,
            "attributes": attributes(kind, journey, at, rng),
        }
        if keyed:
            event["journey_id"] = journey
        events.append(event)
    return events


def realistic_events(
    count: int, seed: int = 7, malformed: float = 0.005, duplicates: float = 0.005
) -> Iterator[Event]:
    """`count` events of overlapping journeys in event-time order, with the given shares of
    malformed (missing `customer_id`, rejected by the validator) and re-sent events."""
    rng = random.Random(seed)
    pending: list[tuple[str, int, Event]] = []  # a heap on event time
    emitted, number, tiebreak = 0, 0, 0
    while emitted < count:
        # Start journeys up to the earliest pending event, so starts and later steps merge.
        next_start = START + timedelta(seconds=number * 30)
        while not pending or next_start.isoformat() <= pending[0][0]:
            for event in journey_events(number, rng, next_start):
                heapq.heappush(pending, (event["occurred_at"], tiebreak, event))
                tiebreak += 1
            number += 1
            next_start = START + timedelta(seconds=number * 30)
        event = heapq.heappop(pending)[2]
        roll = rng.random()
        if roll < malformed:
            event = {k: v for k, v in event.items() if k != "customer_id"}
        elif roll < malformed + duplicates:
            yield dict(event)
            emitted += 1
        yield event
        emitted += 1


def message_key(event: Event) -> bytes:
    """The contract's key: journey_id, else customer_id (malformed events use event_id)."""
    key = event.get("journey_id") or event.get("customer_id") or event["event_id"]
    return str(key).encode()
