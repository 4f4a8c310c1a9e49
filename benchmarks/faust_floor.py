"""Faust's own floor: the worker's consuming loop with no work in it.

The same Faust settings and batching as the product's worker (`noack_take` of
`JOURNEYS_WORKER_BATCH_SIZE` within 0.2 s, then one ack per
event), but nothing is decoded, stored or sent. Its rate bounds what any agent on Faust can
reach on this machine; the gap between it and the worker is the worker's own work.

Run as `faust -A benchmarks.faust_floor worker`; configured by BENCH_* variables
(`benchmarks.baseline_app`).
"""

from __future__ import annotations

from typing import Any

from benchmarks.baseline_app import baseline_app
from pipeline.settings import Settings
from pipeline.stream.logs import quiet_root_logger

SETTINGS = Settings()
app, touchpoints, _ = baseline_app("floor", broker_commit_interval=1.0)


@app.agent(touchpoints)
async def floor(stream: Any) -> None:
    quiet_root_logger()
    async for events in stream.noack_take(SETTINGS.worker_batch_size,
                                          within=0.2):  # fmt: skip
        for event in events:
            await stream.ack(event)
