"""The journey context an alert carries: what the worker holds about the journey when it
raises the alert, so the department can act without asking the customer again. Pure.

This is the hook for the context API's builder (issue 20, the `GET /v1/journeys/{id}`
answer): `journey_context(book, journey_id, now)` takes the journey's state and returns a
JSON-ready object; replace its body with that builder and every alert (topic, webhook,
`alerts` table) carries the same context the API serves. Until then it gives the recent
timeline, the open promises and what the customer already told us.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.journey import JourneyBook
from pipeline.journey import promises_due as open_promises
from pipeline.journey.events import StoredEvent, from_us

# Bounds that keep an alert far below Kafka's message size whatever the events hold (an
# event may be 64 KiB of description): an alert too large to send would fail the
# checkpoint that publishes it, and stop the worker.
TIMELINE_EVENTS = 20  # the most recent ones
TOLD_US = 20  # the latest contact reasons
TEXT_CHARS = 300
_FAR_SECONDS = 10 * 365 * 86_400
_TOLD_US = ("reason", "description", "about")


def journey_context(book: JourneyBook, journey_id: str, now: datetime) -> dict[str, Any]:
    journey = book.journey(journey_id)
    if journey is None:
        return {}
    timeline = [_entry(event) for event in journey.events[-TIMELINE_EVENTS:]]
    told = [_cut(e.attrs["reason"]) for e in journey.events
            if e.type == "contact" and isinstance(e.attrs.get("reason"), str)]  # fmt: skip
    promises = [
        {
            "promise_id": due.promise_id,
            "department": due.department,
            "description": _cut(due.description),
            "due_at": due.due_at,
            "seconds_left": max((due.due_at - now).total_seconds(), 0.0),
        }
        for due in open_promises(book, now, _FAR_SECONDS)
        if due.journey_id == journey_id
    ]
    return {
        "touchpoint_count": len(journey.events),
        "timeline": timeline,
        "open_promises": promises,
        "already_told_us": list(dict.fromkeys(reversed(told)))[:TOLD_US][::-1],
    }


def _entry(event: StoredEvent) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "occurred_at": from_us(event.at),
        "type": event.type,
        "department": event.department,
        "stage": event.stage,
        "channel": event.channel,
    }
    for name in _TOLD_US:
        value = event.attrs.get(name)
        if isinstance(value, str):
            entry[name] = _cut(value)
    return entry


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
