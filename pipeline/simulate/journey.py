"""One simulated journey being written: a clock, a seeded random source, the events so far.

Templates (`company.py`) read like a story: `j.contact("customer_service", ...)`,
`j.later(hours=3)`, `j.promise(...)`. Events are plain dicts in the contract's JSON shape
(docs/departments.md#the-contract-version-1), so the simulator needs nothing but the contract.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Typical waits per channel in seconds; thresholds in the score model are well above these,
# so a long wait is an occasional event, not the norm.
_WAIT_MEAN = {"phone": 70.0, "chat": 25.0, "store": 120.0, "email": 3600.0}

Event = dict[str, Any]


@dataclass
class JourneyWriter:
    rng: random.Random
    customer_id: str
    journey_id: str | None
    now: datetime
    events: list[Event] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def later(self, *, minutes: float = 0, hours: float = 0, days: float = 0) -> None:
        """Advance the journey's clock, with some spread so journeys do not march in step."""
        base = timedelta(minutes=minutes, hours=hours, days=days).total_seconds()
        self.now += timedelta(seconds=base * self.rng.uniform(0.6, 1.4))

    def chance(self, share: float) -> bool:
        return self.rng.random() < share

    def fails(self, kind: str, rate: float) -> bool:
        """Draw whether failure `kind` happens here; record it as planted when it does."""
        failed = self.rng.random() < rate
        if failed:
            self.failures.append(kind)
        return failed

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.getrandbits(40):010x}"

    def emit(
        self,
        department: str,
        type_: str,
        stage: str | None = None,
        channel: str | None = None,
        **attributes: Any,
    ) -> Event:
        event: Event = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "occurred_at": self.now.isoformat(timespec="milliseconds"),
            "customer_id": self.customer_id,
            "department": department,
            "type": type_,
        }
        if self.journey_id is not None:
            event["journey_id"] = self.journey_id
        if stage is not None:
            event["stage"] = stage
        if channel is not None:
            event["channel"] = channel
        if attributes:
            event["attributes"] = attributes
        self.events.append(event)
        return event

    def contact(
        self, department: str, stage: str, channel: str, reason: str, *, resolved: bool
    ) -> Event:
        mean = _WAIT_MEAN.get(channel)
        attributes: dict[str, Any] = {"reason": reason, "resolved": resolved}
        if mean is not None:
            attributes["wait_seconds"] = round(self.rng.expovariate(1 / mean))
            attributes["handle_seconds"] = round(self.rng.uniform(120, 900))
        return self.emit(department, "contact", stage, channel, **attributes)

    def promise(self, department: str, stage: str, description: str, due_in: timedelta) -> str:
        promise_id = self.new_id("P")
        due_at = (self.now + due_in).isoformat(timespec="seconds")
        self.emit(
            department,
            "promise_made",
            stage,
            promise_id=promise_id,
            due_at=due_at,
            description=description,
        )
        return promise_id

    def survey(self, stage: str, csat: int, nps: int) -> None:
        """The customer's answers (how they are decided: `surveys.py`)."""
        self.emit("customer_service", "survey_response", stage, "email", csat=csat, nps=nps)
