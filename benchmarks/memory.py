"""Worker memory with many active journeys in state, held the way the worker holds them.

The worker keeps, per active journey: its encoded book in the Faust table's store (RocksDB
by default, one database per partition, or a dict with the memory store), an entry in the
event-time wake-up schedule when the journey waits on a deadline, and recent event ids for
de-duplication (bounded by `dedup_max_ids`). This process builds the worker's own Faust app
(`create_app`, so the table store and its RocksDB options are the worker's, settings from
the environment as the worker reads them), builds `journeys` real books through the engine
(open service cases: a contact, a handoff, a case and an open promise) event by event
through the worker's BookCache (which keeps the most recent books decoded), puts them in
the partition the worker's partitioner picks, reads a tenth back through the cache as the
worker does for active journeys, and reports its resident set size (RSS).

Run in its own process: `python -m benchmarks.memory JOURNEYS STORE DIR` (STORE: rocksdb or
memory); prints one JSON object. Not included: the Kafka client's fetch buffers and the
sink's row buffer, which do not grow with the number of journeys.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bench_engine import MODEL, journey
from pipeline.contract import Touchpoint
from pipeline.journey import add, next_deadline
from pipeline.journey.events import to_us
from pipeline.settings import Settings
from pipeline.stream.book_cache import BookCache
from pipeline.stream.clock import Wakeups
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.worker import create_app, partitioner

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
    """The worker's table store of encoded books: one RocksDB per partition, or a dict."""

    def __init__(self, settings: Settings):
        self.partitions = settings.topic_partitions
        self.partition_of = partitioner(settings.topic_partitions)
        self.store = create_app(settings).tables["journey_books"].data
        if settings.worker_store == "rocksdb":
            # The databases Faust opens for the partitions, with the worker's options.
            self.dbs: list[Any] = [self.store._db_for_partition(p) for p in range(self.partitions)]
        else:
            self.dbs = [self.store.data] * self.partitions  # Faust's memory store: one dict

    def rocksdb_memory(self) -> dict[str, int]:
        """What RocksDB itself holds, summed over the partition databases (RocksDB only)."""
        if not hasattr(self.store, "_dbs"):
            return {}
        names = ("block-cache-usage", "cur-size-all-mem-tables", "estimate-table-readers-mem")
        return {
            name: sum(int(db.property_int_value(f"rocksdb.{name}") or 0) for db in self.dbs)
            for name in names
        }

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.dbs[partition][key] = value

    def get(self, partition: int, key: bytes) -> bytes | None:
        value = self.dbs[partition].get(key)
        return bytes(value) if value is not None else None


class Worker:
    """The worker's state path: de-dup memory, the BookCache of decoded books, wake-ups."""

    def __init__(self, settings: Settings, table: TableStore) -> None:
        self.table = table
        self.books = BookCache(
            lambda key: table.get(table.partition_of(key), key.encode()),
            keep=settings.worker_book_cache,
        )
        self.wakeups = Wakeups()
        window = int(timedelta(hours=settings.dedup_window_hours).total_seconds() * 1e6)
        self.dedup = RecentEventIds(window, settings.dedup_max_ids)
        self.batch_size = settings.worker_batch_size

    def event(self, tp: Touchpoint) -> None:
        partition = self.table.partition_of(tp.key)
        clock = to_us(tp.occurred_at)
        if self.dedup.seen(partition, tp.event_id, clock, clock):
            return
        book = self.books.get_or_create(tp)
        add(book, tp, MODEL)
        self.books.touched(partition, tp.key)
        deadline = next_deadline(book, MODEL)
        self.wakeups.schedule(partition, book.key, to_us(deadline) if deadline else None)

    def flush(self) -> int:
        """Write the dirty books to the table, mark them clean, keep the recent ones decoded."""
        partitions = range(self.table.partitions)
        generation, encoded = self.books.snapshot(partitions)
        written = 0
        for partition, books in encoded.items():
            for key, raw in books.items():
                self.table.put(partition, key.encode(), raw)
                written += len(raw)
            self.books.persisted(partition, generation)
        self.books.evict_clean()
        return written


def fill(count: int, worker: Worker) -> int:
    """Build `count` journey books through the engine; returns the encoded bytes stored.

    Events come in time order, every journey's first event, then every second one, and so
    on, in batches of `worker_batch_size` flushed as the worker flushes: so, as live, a
    journey's next event finds its book gone from the cache of recent books and reads it
    back from the table. Wake-ups are scheduled at the next deadline (the worker may wake a
    journey earlier for a promise alert: still one moment per journey).
    """
    written = 0
    for step in range(EVENTS_PER_JOURNEY):
        written = 0  # the last step's flushes store every journey's final book
        for number in range(count):
            worker.event(journey(step + 1, f"CASE-{number:010d}")[step])
            if (number + 1) % worker.batch_size == 0:
                written += worker.flush()
        written += worker.flush()
    return written


def measure(count: int, kind: str, directory: Path) -> dict[str, Any]:
    settings = Settings(data_dir=directory, worker_store=kind)
    gc.collect()
    before, _ = rss_bytes()
    started = time.monotonic()
    table = TableStore(settings)
    worker = Worker(settings, table)
    written = fill(count, worker)
    rng = random.Random(7)
    for n, number in enumerate(rng.sample(range(count), max(count // 10, 1))):
        book = worker.books.get(f"CASE-{number:010d}")
        assert book is not None, f"journey {number} missing from the {kind} store"
        if n % worker.batch_size == 0:
            worker.books.evict_clean()
    worker.books.evict_clean()
    gc.collect()
    after, peak = rss_bytes()
    return {
        "journeys": count, "store": kind, "rss": after, "peak_rss": peak,
        "rss_before": before, "state_bytes": written, "wakeups": len(worker.wakeups),
        "dedup_ids": len(worker.dedup), "decoded_books": len(worker.books),
        "rocksdb": table.rocksdb_memory(), "seconds": time.monotonic() - started,
    }  # fmt: skip


def main(argv: list[str]) -> None:
    result = measure(int(argv[0]), argv[1], Path(argv[2]))
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
