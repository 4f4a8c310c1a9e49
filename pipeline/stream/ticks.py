"""Idle clock ticks: deadlines fire on event time even when a partition receives nothing.

Ticks go through the routed topic to the partition itself because the journey table may
only be changed by the partition's own processing; a partition that is still behind (a
replay) gets none, so old traffic never sees today's wall clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pipeline.settings import Settings
from pipeline.stream.metrics import Metrics
from pipeline.stream.runtime import Runtime
from pipeline.stream.topics import TICK_KEY


async def tick_idle_partitions(
    app: Any, runtime: Runtime, routed: Any, settings: Settings, metrics: Metrics
) -> None:
    """Send a wall-clock tick to each caught-up partition that has been idle a while."""
    now = time.monotonic()
    for tp in app.consumer.assignment():
        if tp.topic != settings.topic_touchpoints:
            continue
        lag = await _lag(app, runtime, tp)
        metrics.consumer_lag[str(tp.partition)] = lag
        idle = now - runtime.last_activity.get(tp.partition, 0.0) >= settings.clock_idle_seconds
        if idle and lag <= 0 and not runtime.failed:
            tick_us = int(datetime.now(UTC).timestamp() * 1_000_000)
            await routed.send(key=TICK_KEY, value=str(tick_us).encode(), partition=tp.partition)
            runtime.last_activity[tp.partition] = now


async def _lag(app: Any, runtime: Runtime, tp: Any) -> int:
    """Messages of the partition not processed yet (fetched or not)."""
    highwater = app.consumer.highwater(tp)
    position = await app.consumer.position(tp)
    if highwater is None or position is None:
        return 1  # unknown: not caught up
    processed = runtime.next_offset.get(tp.partition, position)
    return max(int(highwater) - int(processed), 0)
