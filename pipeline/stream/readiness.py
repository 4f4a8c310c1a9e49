"""Is the worker doing its job? The checks behind `/readyz`.

`/healthz` only says the process answers; a worker can answer while Kafka is gone, every
insert fails or it falls hours behind. Readiness is four checks, each named in the answer
so an operator sees which one failed:

- `kafka`: a metadata request to the brokers answered within `KAFKA_TIMEOUT_SECONDS`;
- `store`: the store is open and no write failed since the last acknowledged flush;
- `flush`: rows waiting for ClickHouse were flushed within `max_flush_age_seconds` (an idle
  worker with nothing buffered is fine however long ago it last flushed);
- `lag`: the messages behind on the worker's partitions are at most `max_lag`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pipeline.stream.metrics import Metrics

KAFKA_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Limits:
    max_lag: int
    max_flush_age_seconds: float


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def store_check(metrics: Metrics, store_open: bool) -> Check:
    if not store_open:
        return Check(False, "store not opened yet")
    if not metrics.store_ok:
        failures = metrics.counts["sink_failures"]
        return Check(False, f"a write failed since the last flush ({failures} failures so far)")
    return Check(True, "writes succeed")


def flush_check(metrics: Metrics, limits: Limits, now: float | None = None) -> Check:
    age, waiting = metrics.flush_age(now), metrics.buffered_rows
    detail = f"last flush {age:.1f} s ago, {waiting} rows waiting"
    if waiting and age > limits.max_flush_age_seconds:
        return Check(False, f"{detail} (limit {limits.max_flush_age_seconds:g} s)")
    return Check(True, detail)


def lag_check(metrics: Metrics, limits: Limits) -> Check:
    behind = sum(metrics.consumer_lag.values())
    detail = f"{behind} messages behind (limit {limits.max_lag})"
    return Check(behind <= limits.max_lag, detail)


async def kafka_check(ping: Callable[[], Awaitable[Any]]) -> Check:
    try:
        await asyncio.wait_for(ping(), timeout=KAFKA_TIMEOUT_SECONDS)
    except TimeoutError:
        return Check(False, f"no broker answered within {KAFKA_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # any failure to reach a broker is the answer, not an error
        return Check(False, f"{type(exc).__name__}: {str(exc)[:200]}")
    return Check(True, "brokers answer")


def verdict(checks: dict[str, Check]) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body: 200 when every check passed, else 503 naming the failures."""
    failed = [name for name, check in checks.items() if not check.ok]
    body = {
        "ready": not failed,
        "failed": failed,
        "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
    }
    return (503 if failed else 200), body
