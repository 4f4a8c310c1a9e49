"""The worker's runtime without a broker or a store: `runtime_factory` (the rig it returns,
and what the test plays, are in tests/support/runtime_rig.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import faust
import pytest

from pipeline.contract import Validator
from pipeline.journey import load_score_model
from pipeline.stream.book_cache import BookCache
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.outbox import Outbox
from pipeline.stream.processor import JourneyProcessor
from pipeline.stream.runtime import Runtime
from pipeline.stream.sink import ClickHouseSink
from pipeline.stream.state import StateTable
from pipeline.stream.worker import partitioner
from tests.support.runtime_rig import NAMES, TOPIC, RuntimeRig, Untouchable


@pytest.fixture
def runtime_factory() -> Callable[..., RuntimeRig]:
    def make(partitions: int = 1, attempts: int = 2, validator: Validator | None = None,
             table_data: dict[str, bytes] | None = None) -> RuntimeRig:  # fmt: skip
        app = faust.App(f"unit-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1",
                        store="memory://", topic_partitions=partitions)  # fmt: skip
        table = app.Table("journey_books", partitions=partitions, key_type=bytes,
                          value_type=bytes)  # fmt: skip
        state = StateTable(table, TOPIC, Outbox(Untouchable))
        books = BookCache(state.read)
        metrics = Metrics()
        processor = JourneyProcessor(
            load_score_model(), validator or Validator(max_bytes=2 << 20), books,
            partitioner(partitions), touchpoints_topic=TOPIC, alert_horizon_s=24 * 3600,
            dedup=RecentEventIds(int(timedelta(days=2).total_seconds() * 1e6), 100_000),
            metrics=metrics,
        )  # fmt: skip
        sink = ClickHouseSink(Untouchable(), metrics, flush_rows=10**9, flush_seconds=1e9,  # type: ignore[arg-type]
                              buffer_rows=10**9, retry_max_seconds=1)  # fmt: skip
        rig: RuntimeRig

        async def rewind(offsets: dict[tuple[str, int], int]) -> None:
            rig.rewinds.append(dict(offsets))

        def stop(code: int) -> None:
            raise AssertionError(f"the worker asked to stop with exit {code}")

        runtime = Runtime(
            processor=processor, books=books, sink=sink, state=state, outbox=Outbox(Untouchable),
            names=NAMES, touchpoints_topic=TOPIC, commit_offsets=Untouchable(), stop=stop,
            rewind=rewind, attempts=attempts,
        )  # fmt: skip
        rig = RuntimeRig(runtime, table)
        for key, value in (table_data or {}).items():  # a table an older version wrote
            table.data[key] = value
        return rig

    return make
