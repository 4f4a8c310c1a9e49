"""How the company's systems deliver events: mostly on time, some late, some out of order,
some twice, a few broken. Every fault is counted, so the summary says what was planted.

A delivery's `sent_at` is in simulated time; sorting by it gives the order messages reach
Kafka. Late and out-of-order events keep their true `occurred_at` and are merely sent later.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from pipeline.simulate.journey import Event

# One department's system is the usual culprit for broken events; it makes the
# "rejected events per department" view tell a story instead of showing noise.
BUGGY_DEPARTMENT = "delivery"
UNREADABLE = ""


@dataclass(frozen=True)
class Delivery:
    sent_at: datetime
    key: bytes
    value: bytes
    department: str


@dataclass
class FaultCounts:
    late: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    malformed: int = 0
    malformed_by_department: Counter[str] = field(default_factory=Counter)
    malformed_by_reason: Counter[str] = field(default_factory=Counter)


def encode(event: Event) -> bytes:
    return orjson.dumps(event)


def message_key(event: Event) -> bytes:
    """The contract's key: journey_id when present, else customer_id."""
    return str(event.get("journey_id") or event["customer_id"]).encode()


def deliver(
    events: list[tuple[datetime, Event]],
    rng: random.Random,
    shares: dict[str, float],
    counts: FaultCounts,
) -> list[Delivery]:
    """Turn time-ordered events into the messages sent, with the configured faults."""
    deliveries: list[Delivery] = []
    for occurred_at, event in events:
        # On-time events keep event-time order: only the faults below reorder the stream.
        sent_at = occurred_at + timedelta(seconds=1)
        if rng.random() < shares["late"]:
            sent_at = occurred_at + timedelta(hours=rng.uniform(6, 72))
            counts.late += 1
        elif rng.random() < shares["out_of_order"]:
            sent_at = occurred_at + timedelta(minutes=rng.uniform(5, 120))
            counts.out_of_order += 1
        item = Delivery(sent_at, message_key(event), encode(event), event["department"])
        deliveries.append(item)
        if rng.random() < shares["duplicate"]:
            again = sent_at + timedelta(seconds=rng.uniform(1, 3600))
            deliveries.append(Delivery(again, item.key, item.value, item.department))
            counts.duplicates += 1
    deliveries.extend(_malformed(events, rng, shares["malformed"], counts))
    deliveries.sort(key=lambda d: d.sent_at)
    return deliveries


def _malformed(
    events: list[tuple[datetime, Event]], rng: random.Random, share: float, counts: FaultCounts
) -> list[Delivery]:
    wanted = round(len(events) * share)
    buggy = [item for item in events if item[1]["department"] == BUGGY_DEPARTMENT] or events
    broken = []
    for _ in range(wanted):
        occurred_at, event = rng.choice(buggy if rng.random() < 0.5 else events)
        reason, department, value = break_event(event, rng)
        broken.append(Delivery(occurred_at, message_key(event), value, department))
        counts.malformed += 1
        counts.malformed_by_department[department] += 1
        counts.malformed_by_reason[reason] += 1
    return broken


def break_event(event: Event, rng: random.Random) -> tuple[str, str, bytes]:
    """One realistic way a department's system gets the contract wrong.

    Returns (what is wrong, the department a validator can still read, the bytes sent).
    The copy gets a fresh event_id so it never collides with the good event.
    """
    bad = dict(event, event_id=f"bad-{rng.getrandbits(64):016x}")
    department = str(event["department"])
    reason = rng.choice(
        ("naive_timestamp", "unknown_type", "missing_customer_id", "bad_department", "not_json")
    )
    if reason == "naive_timestamp":
        bad["occurred_at"] = str(bad["occurred_at"])[:19]
    elif reason == "unknown_type":
        bad["type"] = "complaint_logged"
    elif reason == "missing_customer_id":
        del bad["customer_id"]
    elif reason == "bad_department":
        # A misspelt department still sees its rejections under the name it sent.
        department = bad["department"] = department.replace("_", " ").title() + "!"
    else:
        return reason, UNREADABLE, encode(bad)[:-7]
    return reason, department, encode(bad)
