"""What the baseline Faust apps share: their BENCH_* configuration, the app, the input topic.

Faust imports a baseline's module before any argument could reach it, so the suite
configures it through the environment (`benchmarks.contenders`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import faust

BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
TOPIC = os.environ.get("BENCH_TOPIC", "touchpoints")
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))


def baseline_app(name: str, **options: Any) -> tuple[faust.App, Any, Path]:
    """(app, its raw-bytes input topic, its working directory) for baseline `name`."""
    workdir = Path(os.environ.get("BENCH_WORKDIR", f".journeys/bench-{name}"))
    app = faust.App(
        os.environ.get("BENCH_APP_ID", f"bench-{name}"),
        broker=f"kafka://{BOOTSTRAP}",
        store="memory://",
        datadir=str(workdir / "faust"),
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        **options,
    )
    return app, app.topic(TOPIC, value_serializer="raw", key_serializer="raw"), workdir
