"""Faust's own floor: the worker's consuming loop with no work in it.

The same Faust settings and batching as the product's worker (`noack_take` of
`JOURNEYS_WORKER_BATCH_SIZE` within `JOURNEYS_WORKER_BATCH_SECONDS`, then one ack per
event), but nothing is decoded, stored or sent. Its rate bounds what any agent on Faust can
reach on this machine; the gap between it and the worker is the worker's own work.

Run as `faust -A benchmarks.faust_floor worker`; configured by BENCH_* variables (Faust
imports the module before any argument could reach it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import faust

from pipeline.settings import Settings
from pipeline.stream.worker import quiet_root_logger

BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
TOPIC = os.environ.get("BENCH_TOPIC", "touchpoints")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))
WORKDIR = Path(os.environ.get("BENCH_WORKDIR", ".journeys/bench-floor"))
SETTINGS = Settings()

app = faust.App(
    os.environ.get("BENCH_APP_ID", "bench-floor"),
    broker=f"kafka://{BOOTSTRAP}",
    store="memory://",
    datadir=str(WORKDIR / "faust"),
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    web_enabled=False,
)
touchpoints = app.topic(TOPIC, value_serializer="raw", key_serializer="raw")


@app.agent(touchpoints)
async def floor(stream: Any) -> None:
    quiet_root_logger()
    async for events in stream.noack_take(SETTINGS.worker_batch_size,
                                          within=SETTINGS.worker_batch_seconds):  # fmt: skip
        for event in events:
            await stream.ack(event)
