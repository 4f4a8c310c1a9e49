"""The typed forms of the event contract (docs/departments.md#the-contract-version-1).

`Touchpoint` is what the validator hands on when an event is accepted; `Rejection` is what
it hands on when not. Both are plain msgspec structs: cheap to build on the hot path and to
encode into a Faust table or a Kafka message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

EVENT_TYPES: tuple[str, ...] = (
    "contact",
    "handoff",
    "case_opened",
    "case_resolved",
    "case_reopened",
    "promise_made",
    "promise_kept",
    "appointment_scheduled",
    "appointment_completed",
    "appointment_missed",
    "rework",
    "invoice_issued",
    "invoice_corrected",
    "billing_dispute_opened",
    "billing_dispute_resolved",
    "order_placed",
    "order_delivered",
    "order_delayed",
    "feedback_received",
    "feedback_answered",
    "survey_response",
    "proactive_update",
    "journey_closed",
)

CHANNELS: tuple[str, ...] = (
    "phone", "email", "chat", "web", "app", "store", "field", "mail", "social",
)  # fmt: skip


class Touchpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted event. `occurred_at` is timezone-aware (UTC after validation)."""

    event_id: str
    occurred_at: datetime
    customer_id: str
    department: str
    type: str
    journey_id: str | None = None
    stage: str | None = None
    channel: str | None = None
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    schema_version: int = 1

    @property
    def key(self) -> str:
        """The Kafka message key the contract prescribes: journey_id, else customer_id."""
        return self.journey_id if self.journey_id is not None else self.customer_id


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """Why an event was refused: a stable machine `code`, the `field`, a one-line `message`.

    `department` is filled when it could be read from the payload, so rejections can be
    counted per department; it is empty otherwise.
    """

    code: str
    field: str
    message: str
    department: str = ""
