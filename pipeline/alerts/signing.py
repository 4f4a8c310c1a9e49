"""Signing a webhook delivery, and checking one (what a receiver does; docs/departments.md).

The signature is HMAC-SHA256, keyed with the department's secret, of the delivery's
timestamp (Unix seconds, as sent in `Journeys-Timestamp`), a dot, and the body's exact
bytes; it is sent hex-encoded as `Journeys-Signature: v1=<hex>`. Signing the timestamp
with the body is what makes the replay check worth anything: an attacker who recorded a
delivery cannot send it again later with a fresh timestamp. Each attempt is signed anew,
so a retry an hour later still passes a receiver's five-minute window.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_HEADER = "Journeys-Signature"
TIMESTAMP_HEADER = "Journeys-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "Journeys-Attempt"
KIND_HEADER = "Journeys-Alert-Kind"
SCHEME = "v1"
TOLERANCE_SECONDS = 300  # a receiver refuses deliveries signed further from its clock


class SignatureError(ValueError):
    """A delivery whose signature or timestamp does not hold; the message says which."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 of `b"<timestamp>." + body` under `secret`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={digest.hexdigest()}"


def idempotency_key(alert_id: str) -> str:
    """Stable per alert, and header-safe whatever the journey id holds (an alert id embeds
    the journey id, which may be any text): a re-sent alert carries the same key."""
    return hashlib.sha256(alert_id.encode()).hexdigest()[:32]


def signed_headers(
    secret: str, timestamp: int, body: bytes, *, alert_id: str, kind: str, attempt: int
) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        IDEMPOTENCY_HEADER: idempotency_key(alert_id),
        ATTEMPT_HEADER: str(attempt),
        KIND_HEADER: kind,
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless `body` was signed with `secret` within `tolerance`
    seconds of `now`. `headers` must look names up case-insensitively (aiohttp's, or a
    dict with the exact names above)."""
    stamp = headers.get(TIMESTAMP_HEADER)
    if stamp is None or not stamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER}: expected Unix seconds, got {stamp!r}")
    if abs(now - int(stamp)) > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER}: {stamp} is more than {tolerance:g} s from now ({now:.0f}): "
            "a replayed or delayed delivery"
        )
    presented = headers.get(SIGNATURE_HEADER, "")
    expected = sign(secret, int(stamp), body)
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise SignatureError(f"{SIGNATURE_HEADER}: does not match the body and timestamp")
