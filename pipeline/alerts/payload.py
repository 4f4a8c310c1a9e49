"""What is sent: the alert as the worker published it, and what is dead-lettered. Pure.

The webhook body is the alert message's bytes exactly as on the alerts topic: a JSON object
with `alert_id`, `kind`, `department`, `journey_id`, `customer_id`, `raised_at`, `act_by`,
the kind's own fields and `context` (docs/departments.md#alerts-to-your-department-webhooks).
The signature covers those bytes, and a re-delivery sends the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from pipeline.alerts.webhooks import Webhook

DEAD_LETTER_REASON_HEADER = "reason"


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    department: str
    body: bytes  # the message value, sent as is
    customer_id: str = ""  # whose journey: an erased customer's alerts are not sent


class UnreadableAlert(ValueError):
    """A message on the alerts topic that is not an alert (it is dead-lettered as such)."""


def read_alert(raw: bytes | None) -> Alert:
    if raw is None:
        raise UnreadableAlert("a message without a value (tombstone)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnreadableAlert(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise UnreadableAlert(f"expected a JSON object, got {type(data).__name__}")
    names = ("alert_id", "kind", "department")
    fields = [data.get(name) for name in names]
    missing = [n for n, value in zip(names, fields, strict=True) if not _text(value)]
    if missing:
        raise UnreadableAlert(f"missing or empty {', '.join(missing)}")
    customer_id = data.get("customer_id")
    return Alert(str(fields[0]), str(fields[1]), str(fields[2]), raw,
                 customer_id if isinstance(customer_id, str) else "")  # fmt: skip


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def dead_letter(
    raw: bytes | None,
    *,
    reason: str,
    attempts: int,
    failed_at: datetime,
    webhook: Webhook | None = None,
    last_status: int | None = None,
    source: tuple[str, int, int] | None = None,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a dead-lettered alert: the alert itself (as JSON when it is
    JSON, else as text), where it was to go (the URL without query or credentials), how
    often it was tried, the last HTTP status and the reason in words."""
    try:
        alert: Any = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        alert = raw.decode("utf-8", "replace") if raw is not None else None
    department = (
        webhook.department
        if webhook
        else str(alert.get("department", "") if isinstance(alert, dict) else "")
    )
    record = {
        "alert": alert,
        "department": department,
        "url": webhook.shown_url if webhook else None,
        "attempts": attempts,
        "last_status": last_status,
        "reason": reason,
        "failed_at": failed_at,
        "source": dict(zip(("topic", "partition", "offset"), source, strict=True))
        if source
        else None,
    }
    value = orjson.dumps(record, option=orjson.OPT_UTC_Z)
    return department.encode(), value, [(DEAD_LETTER_REASON_HEADER, reason.encode()[:1000])]


def sample_alert(department: str, now: datetime) -> Alert:
    """What `journeys alerts test` sends: shaped as a real alert, marked as a test."""
    alert_id = f"test:{department}:{now.strftime('%Y%m%dT%H%M%S')}"
    payload = {
        "alert_id": alert_id,
        "kind": "test",
        "department": department,
        "journey_id": "test-journey",
        "customer_id": "test-customer",
        "ref": "test",
        "raised_at": now,
        "act_by": now + timedelta(hours=24),
        "reason": "a test alert from `journeys alerts test`; nothing to act on",
        "context": {},
        "test": True,
    }
    body = orjson.dumps(payload, option=orjson.OPT_UTC_Z)
    return Alert(alert_id, "test", department, body, "test-customer")
