"""Canonical JSON for a touchpoint: what the emitter and the simulator put on the wire.

Canonical means one spelling per event: keys sorted (attributes too), absent optional
fields left out rather than sent as null, `occurred_at` in UTC with a `Z`, and
`schema_version` always written so a reader never has to guess the contract version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from pipeline.contract.touchpoint import Touchpoint


class _Canonical(msgspec.Struct, omit_defaults=True, kw_only=True):
    event_id: str
    occurred_at: datetime
    customer_id: str
    department: str
    type: str
    schema_version: int
    journey_id: str | None = None
    stage: str | None = None
    channel: str | None = None
    attributes: dict[str, Any] = {}


_ENCODER = msgspec.json.Encoder(order="sorted")


def encode_touchpoint(touchpoint: Touchpoint) -> bytes:
    """The canonical JSON bytes of `touchpoint`; the validator accepts them unchanged."""
    occurred_at = touchpoint.occurred_at
    if occurred_at.tzinfo is None:
        raise ValueError(f"occurred_at: got naive {occurred_at.isoformat()}, expected aware")
    return _ENCODER.encode(
        _Canonical(
            event_id=touchpoint.event_id,
            occurred_at=occurred_at,
            customer_id=touchpoint.customer_id,
            department=touchpoint.department,
            type=touchpoint.type,
            schema_version=touchpoint.schema_version,
            journey_id=touchpoint.journey_id,
            stage=touchpoint.stage,
            channel=touchpoint.channel,
            attributes=touchpoint.attributes,
        )
    )
