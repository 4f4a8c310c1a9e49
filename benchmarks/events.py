"""The messages the benchmarks send: the simulator's realistic company traffic.

`journeys simulate`'s generator gives a month of a company's touchpoints with its default
fault shares (late, out-of-order, duplicate and malformed messages); the suite takes the
first `count` messages in sending order. `benchmarks.mix` is the fallback when the simulator
is unavailable.
"""

from __future__ import annotations

from typing import Any

import orjson

Message = tuple[bytes, bytes]  # (key, value) as sent to Kafka
SENT_AT = "bench_sent_at"  # attribute carrying the wall-clock send time, for latency
EVENTS_PER_CUSTOMER = 10  # the simulator's month averages about this many per customer


def simulated(count: int, seed: int = 7) -> tuple[list[Message], str]:
    """`count` messages and the name of the generator that made them."""
    try:
        from pipeline.simulate import SimulationConfig, simulate
    except ImportError:
        return _fallback(count, seed), "benchmarks.mix (simulator not importable)"
    customers = max(count // EVENTS_PER_CUSTOMER + 1, 10)
    while True:
        deliveries, _ = simulate(SimulationConfig(customers=customers, seed=seed))
        if len(deliveries) >= count:
            return [(d.key, d.value) for d in deliveries[:count]], "pipeline.simulate"
        customers = int(customers * 1.3) + 1


def _fallback(count: int, seed: int) -> list[Message]:
    from benchmarks.mix import message_key, realistic_events

    return [(message_key(e), orjson.dumps(e)) for e in realistic_events(count, seed)]


def decoded(value: bytes) -> dict[str, Any] | None:
    """The event as a dict, or None for a malformed message (sent as is, never stamped)."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(event) is not dict or not isinstance(event.get("attributes", {}), dict):
        return None
    return event


def stamped(value: bytes, now: float) -> tuple[bytes, str | None]:
    """The message with its send time in `attributes` (unknown keys are kept by contract),
    and its event_id; malformed messages come back unchanged with no id."""
    event = decoded(value)
    if event is None or not isinstance(event.get("event_id"), str):
        return value, None
    event["attributes"] = {**event.get("attributes", {}), SENT_AT: now}
    return orjson.dumps(event), event["event_id"]


def relabel(messages: list[Message], prefix: str) -> list[Message]:
    """Copies with ids no measured message uses, so de-duplication cannot swallow either."""
    out = []
    for key, value in messages:
        event = decoded(value)
        if event is None:
            continue
        event["event_id"] = f"{prefix}{event.get('event_id')}"
        if isinstance(event.get("journey_id"), str):
            event["journey_id"] = f"{prefix}{event['journey_id']}"
        out.append((prefix.encode() + key, orjson.dumps(event)))
    return out
