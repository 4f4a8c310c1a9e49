"""Worker memory with many active journeys in state, held the way the worker holds them.

The worker keeps, per active journey: its encoded book in the Faust table's store (RocksDB
by default, one database per partition opened with Faust's own options, or a dict with the
memory store), an entry in the event-time wake-up schedule when the journey waits on a
deadline, and recent event ids for de-duplication (bounded by `dedup_max_ids`). This process
builds `journeys` real books through the engine (open service cases: a contact, a handoff,
a case and an open promise), puts them there, reads a tenth back as the worker does for
active journeys, and reports its resident set size (RSS).

Run in its own process: `python -m benchmarks.memory JOURNEYS STORE DIR` (STORE: rocksdb or
memory); prints one JSON object. Not included: the Kafka client's fetch buffers and the
sink's row buffer, which do not grow with the number of journeys.
"""

from __future__ import annotations

import gc
import random
import sys
import time
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bench_engine import MODEL, journey
from pipeline.journey import JourneyBook, add, next_deadline
from pipeline.settings import Settings
from pipeline.stream.clock import Wakeups, to_us
from pipeline.stream.dedup import RecentEventIds

EVENTS_PER_JOURNEY = 4  # an open service case: contact, handoff, case_opened, promise_made


def rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process, from /proc (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


class TableStore:
    """The Faust table's storage of encoded books: RocksDB per partition, or a dict."""

    def __init__(self, kind: str, directory: Path, partitions: int):
        self.partitions = partitions
        if kind == "rocksdb":
            from faust.stores.rocksdb import RocksDBOptions

            options = RocksDBOptions()
            self.dbs: list[Any] = [
                options.open(directory / f"journey_books-{p}.db") for p in range(partitions)
            ]
        else:
            self.dbs = [{} for _ in range(partitions)]

    def db(self, key: bytes) -> Any:
        return self.dbs[zlib.crc32(key) % self.partitions]

    def put(self, key: bytes, value: bytes) -> None:
        self.db(key)[key] = value

    def get(self, key: bytes) -> bytes | None:
        value = self.db(key).get(key)
        return bytes(value) if value is not None else None


def fill(count: int, table: TableStore, wakeups: Wakeups, dedup: RecentEventIds) -> int:
    """Build `count` journey books through the engine; returns the encoded bytes written."""
    written = 0
    for number in range(count):
        key = f"CASE-{number:010d}"
        touchpoints = journey(EVENTS_PER_JOURNEY, key)
        book = JourneyBook.for_touchpoint(touchpoints[0])
        for tp in touchpoints:
            add(book, tp, MODEL)
            clock = to_us(tp.occurred_at)
            dedup.seen(number % table.partitions, tp.event_id, clock, clock)
        encoded = book.to_bytes()
        table.put(key.encode(), encoded)
        deadline = next_deadline(book, MODEL)
        wakeups.schedule(number % table.partitions, key, to_us(deadline) if deadline else None)
        written += len(encoded)
    return written


def measure(count: int, kind: str, directory: Path) -> dict[str, Any]:
    settings = Settings()
    gc.collect()
    before, _ = rss_bytes()
    started = time.monotonic()
    table = TableStore(kind, directory, settings.topic_partitions)
    wakeups = Wakeups()
    window = int(timedelta(hours=settings.dedup_window_hours).total_seconds() * 1e6)
    dedup = RecentEventIds(window, settings.dedup_max_ids)
    written = fill(count, table, wakeups, dedup)
    rng = random.Random(7)
    for number in rng.sample(range(count), max(count // 10, 1)):
        raw = table.get(f"CASE-{number:010d}".encode())
        assert raw is not None, f"journey {number} missing from the {kind} store"
        JourneyBook.from_bytes(raw)
    gc.collect()
    after, peak = rss_bytes()
    return {
        "journeys": count, "store": kind, "rss": after, "peak_rss": peak,
        "rss_before": before, "state_bytes": written, "wakeups": len(wakeups),
        "dedup_ids": len(dedup), "seconds": time.monotonic() - started,
    }  # fmt: skip


def main(argv: list[str]) -> None:
    result = measure(int(argv[0]), argv[1], Path(argv[2]))
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
