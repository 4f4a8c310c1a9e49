"""Everything the processor outputs for a simulated month, hashed: run compiled and with
JOURNEYS_PURE_PYTHON=1, the two digests must be equal (tests/integration/test_compiled_engine.py).
Half the batches leave their catch-ups to `settle`, as the worker does.

Usage: python -m tests.support.engine_digest CUSTOMERS BATCH
Prints one JSON object: the engine line, the file the assembly module loaded from, the
counters, and the SHA-256 over every batch's rows, messages, dead letters and books.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from pipeline import compiled
from pipeline.journey import assembly
from pipeline.simulate import SimulationConfig, simulate
from pipeline.store import json_each_row
from pipeline.stream.processor import Inbound
from pipeline.stream.worker import partitioner
from tests.support import stream_messages

START = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
PARTITIONS = 4
HOUR_US = 3600 * 10**6


def encoded(value: Any) -> bytes:
    def default(obj: Any) -> Any:
        if isinstance(obj, msgspec.Struct):
            return msgspec.to_builtins(obj, builtin_types=(datetime,))
        return repr(obj)

    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_DATACLASS,
                        default=default)  # fmt: skip


def digest(customers: int, batch: int) -> dict[str, Any]:
    deliveries, _ = simulate(SimulationConfig(customers=customers, seed=11, start=START))
    store: dict[str, bytes] = {}
    # Few books kept: books are evicted, read back and decoded.
    processor = stream_messages.processor(PARTITIONS, store, books_kept=300)
    books, metrics = processor.books, processor.metrics
    place = partitioner(PARTITIONS)
    inbound: dict[int, list[Inbound]] = {}
    tick = int(START.timestamp() * 1e6)
    for offset, delivery in enumerate(deliveries):
        partition = place(delivery.key.decode())
        inbound.setdefault(partition, []).append(
            Inbound("touchpoints", partition, offset, delivery.value, 1.7e9 + offset / 1000)
        )
        if offset % 997 == 0:  # idle ticks walk the clock on: deadlines fire
            tick += 6 * HOUR_US
            for other in range(PARTITIONS):
                inbound.setdefault(other, []).append(
                    Inbound("touchpoints", other, offset, None, 0.0, tick)
                )
    total = hashlib.sha256()
    for partition, events in sorted(inbound.items()):
        for start in range(0, len(events), batch):
            # Odd batches leave their catch-ups to a settle after them, as the worker's
            # intake does (`Runtime._settle`); even ones catch up in `process`.
            index = start // batch
            out = processor.process(partition, events[start : start + batch], NOW,
                                    settle=index % 2 == 0)  # fmt: skip
            if index % 2 == 1 or start + batch >= len(events):
                settled = processor.settle(partition, build_rows=False)
                out.rows.update({t: out.rows.get(t, []) + r for t, r in settled.rows.items()})
                out.latest.merge(settled.latest)
                out.alerts += settled.alerts
                out.moved.update(settled.moved)
            for table, rows in out.rows.items():
                total.update(table.encode() + json_each_row(rows))
            built = out.latest.build()
            total.update(json_each_row(built.journey_rows) + json_each_row(built.signal_rows))
            total.update(encoded([
                [(r, p, j) for r, p, j in out.dead_letters],
                [(t, k, v.decode()) for t, k, v in out.reroutes],
                [(k, v.decode()) for k, v in [*out.scores, *built.scores, *out.alerts]],
                out.produced_at, out.moved,
                {k: (v[0], sorted(v[1])) for k, v in out.signal_sets.items()},
            ]))  # fmt: skip
            generation, snapshot = books.snapshot([partition])
            for key, raw in sorted(snapshot[partition].items()):
                total.update(key.encode() + raw)
                store[key] = raw
            books.persisted(partition, generation)
            books.evict_clean()
    return {
        "engine": compiled.ENGINE.describe(),
        "assembly": assembly.__file__,
        "events": len(deliveries),
        "counts": dict(sorted(metrics.counts.items())),
        "rejected": dict(sorted(metrics.rejected_by_code.items())),
        "digest": total.hexdigest(),
    }


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(digest(int(sys.argv[1]), int(sys.argv[2]))))
