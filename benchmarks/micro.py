"""Hot-path micro-benchmarks: the worker's per-event work without Kafka or ClickHouse.

- validation: the contract validator on the simulator's messages (with its malformed share);
- journey update + re-score: the engine's own benchmark functions (`bench_engine`) at 5 and
  50 events per journey, with the state decoded from and encoded to table bytes;
- sink rows: building the touchpoints rows and their insert body (one JSON array, as the
  sink sends it);
- processor: `JourneyProcessor.process` on batches of simulator messages, i.e. validate,
  route, de-duplicate, update and re-score, build rows (all of the worker's Python work
  except Faust, the Kafka client and the insert), with a cProfile of where its time goes.

Each figure is the best of a few rounds on one core (the least disturbed by other load).
Run in its own process: `python -m benchmarks.micro EVENTS`; prints one JSON object.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from benchmarks import bench_engine
from benchmarks.events import Message, simulated
from pipeline.contract import Touchpoint, Validator
from pipeline.journey import load_score_model
from pipeline.store import json_array_rows
from pipeline.stream import rows as build
from pipeline.stream.book_cache import BookCache
from pipeline.stream.collector import PacedCollector
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor
from pipeline.stream.sink import PartitionBatch
from pipeline.stream.worker import partitioner

PARTITIONS = 4
BATCH = 5000  # the worker's default `worker_batch_size`
NOW = datetime.now(UTC)


def best_seconds(run: Callable[[], object], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def validation(messages: list[Message]) -> dict[str, float]:
    validator = Validator()
    values = [value for _, value in messages]
    seconds = best_seconds(lambda: [validator.validate(v, now=NOW) for v in values])
    return {"events": len(values), "per_event": seconds / len(values)}


def engine() -> dict[str, float]:
    return {
        "per_event_5": bench_engine.best_of(3, lambda: bench_engine.nth(5, 2000, "table")),
        "per_event_50": bench_engine.best_of(3, lambda: bench_engine.nth(50, 500, "table")),
        "cached_50": bench_engine.best_of(3, lambda: bench_engine.nth(50, 500, "memory")),
        "grow_50": bench_engine.best_of(3, lambda: bench_engine.grow(50, 40)),
    }


def processor(partitions: int = PARTITIONS) -> JourneyProcessor:
    books = BookCache(lambda key: None)
    return JourneyProcessor(
        load_score_model(), Validator(), books, partitioner(partitions),
        touchpoints_topic="touchpoints", alert_horizon_s=24 * 3600,
        dedup=RecentEventIds(24 * 3600 * 10**6, 1_000_000), metrics=Metrics(),
    )  # fmt: skip


def batches(messages: list[Message]) -> list[tuple[int, list[Inbound]]]:
    """Messages split by partition as Kafka's default partitioner places them, in batches."""
    place = partitioner(PARTITIONS)
    by_partition: dict[int, list[Inbound]] = {}
    for offset, (key, value) in enumerate(messages):
        partition = place(key.decode())
        by_partition.setdefault(partition, []).append(
            Inbound("touchpoints", partition, offset, value, time.time())
        )
    return [
        (partition, inbound[start : start + BATCH])
        for partition, inbound in sorted(by_partition.items())
        for start in range(0, len(inbound), BATCH)
    ]


def run_processor(work: list[tuple[int, list[Inbound]]]) -> dict[str, int]:
    proc = processor()
    collector = PacedCollector()  # garbage collection paced by batches, as in the worker
    collector.start()
    try:
        return _run(proc, work, collector)
    finally:
        collector.stop()


def _run(
    proc: JourneyProcessor, work: list[tuple[int, list[Inbound]]], collector: PacedCollector
) -> dict[str, int]:
    rows = 0
    for partition, batch in work:
        # As the worker does: journey and signal rows built at the checkpoint (`seal`).
        output = proc.process(partition, batch, NOW, build_rows=False)
        sealed = PartitionBatch(partition, rows=output.rows, latest=output.latest)
        sealed.seal()
        rows += sealed.row_count
        for table_rows in sealed.rows.values():
            json_array_rows(table_rows)  # the sink's encoding, done once per flush
        generation, _ = proc.books.snapshot([partition])  # the books for the table, per flush
        proc.books.persisted(partition, generation)  # stored: clean until touched again
        collector.after_batch()
    return {"rows": rows}


def processor_profile(work: list[tuple[int, list[Inbound]]], top: int = 18) -> str:
    profile = cProfile.Profile()
    profile.enable()
    run_processor(work)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def sink_rows(messages: list[Message]) -> dict[str, float]:
    validator = Validator()
    touchpoints = [t for _, v in messages if isinstance(t := validator.validate(v, now=NOW),
                                                        Touchpoint)]  # fmt: skip
    at = build.Position("touchpoints", 0, 0, NOW)

    def make() -> bytes:
        return json_array_rows([build.touchpoint_row(tp, None, at) for tp in touchpoints])

    return {"events": len(touchpoints), "per_event": best_seconds(make) / len(touchpoints)}


def measure(count: int) -> dict[str, Any]:
    messages, source = simulated(count)
    work = batches(messages)
    per_batch = best_seconds(lambda: run_processor(work), rounds=2)
    return {
        "source": source,
        "validation": validation(messages),
        "engine": engine(),
        "sink_rows": sink_rows(messages),
        "processor": {"events": len(messages), "per_event": per_batch / len(messages)}
        | run_processor(work),
        "profile": processor_profile(work),
    }


def main(argv: list[str]) -> None:
    sys.stdout.buffer.write(orjson.dumps(measure(int(argv[0]))))


if __name__ == "__main__":
    main(sys.argv[1:])
