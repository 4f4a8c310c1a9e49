"""Idle clock ticks: deadlines fire on event time even when a partition receives nothing.

Ticks go through the routed topic to the partition itself because the journey table may
only be changed by the partition's own processing; a partition that is still behind (a
replay) gets none, so old traffic never sees today's wall clock.

Nor does a partition that an event re-keyed to it is on its way to: another partition took
it, and sends it to the routed topic only at its checkpoint. A tick sent before it would
move the clock past the event's deadlines first: a promise the event keeps would be
reported broken, alerted (an alert is not taken back), and retracted only when the event
arrives; a journey the tick retires would drop the event as too late. A tick sent after the
event is behind it on the routed partition, and processed after it. This worker knows only
what its own partitions re-keyed (`Runtime.rerouting_to`); an event another worker re-keyed
can still be overtaken, within that worker's flush interval.
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
        if idle and lag <= 0 and not runtime.failed and not runtime.rerouting_to(tp.partition):
            tick_us = int(datetime.now(UTC).timestamp() * 1_000_000)
            await routed.send(key=TICK_KEY, value=str(tick_us).encode(), partition=tp.partition)
            runtime.last_activity[tp.partition] = now


async def _lag(app: Any, runtime: Runtime, tp: Any) -> int:
    """Messages of the partition not processed yet (fetched or not).

    Before this worker processed any of the partition since it was assigned, that is
    everything after its committed offset, where the consumer started it. Not the fetch
    position: that is past whatever was fetched and not yet processed, and a partition
    fetched to its end at once (a backlog after a rebalance or a restart) looked caught
    up: its wall-clock tick fired every deadline before the backlog's events, which then
    came too late for their journeys (a replay of history diverging from the live run).
    """
    highwater = app.consumer.highwater(tp)
    processed = runtime.next_offset.get(tp.partition)
    if processed is None:
        # Faust's record of the committed offsets, read at the assignment and kept up to
        # date by the checkpoint's commits (`Consumer._commit_offsets`). None: 0, nothing
        # committed (the consumer starts at the beginning), or not read yet (too early to
        # say; then the partition counts as not caught up unless it is empty).
        processed = app.consumer._committed_offset.get(tp) or 0
    if highwater is None:
        return 1  # unknown: not caught up
    return max(int(highwater) - int(processed), 0)
