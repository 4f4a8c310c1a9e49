"""A partition's recovery reads its own books, not every partition's; a checkpoint writes
each partition's books to its own database, in write batches.

At each rebalance every assigned partition recovers (its clock and the wake-ups of its
books, `Runtime._recover`); reading through the table, RocksDB iterated every assigned
partition's database for each, so a rebalance read partitions x books. The worker's own
RocksDB table (one database per partition, as `journeys run` opens it) is written as a
checkpoint writes it and read back per partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from faust.streams import current_event
from faust.types import TP

from pipeline.settings import Settings
from pipeline.stream.outbox import Record
from pipeline.stream.state import StateTable, in_partition
from pipeline.stream.worker import create_app
from tests.support.runtime_rig import TOPIC, Untouchable


def test_a_partition_reads_the_books_of_its_own_database_only(tmp_path: Path) -> None:
    table = rocksdb_table(tmp_path)
    state = StateTable(table, TOPIC, Untouchable())  # type: ignore[arg-type]
    for partition in range(3):
        with in_partition(TOPIC, partition):
            for n in range(2):
                table.data[f"J{partition}-{n}"] = f"book {partition}-{n}".encode()
    assert state.items(1) == [("J1-0", b"book 1-0"), ("J1-1", b"book 1-1")]
    with in_partition(TOPIC, 2):
        assert state.read("J2-1") == b"book 2-1"  # what the processor reads, as written
        # Straight from the partition's database, and the same as the table's own read:
        # a book stored, one never stored, one of another partition (not this one's).
        assert state._direct is True
        for key in ("J2-0", "J2-9", "J1-0"):
            expected = table.get(key)
            assert state.read(key) == (bytes(expected) if expected is not None else None)
        assert state.read("J1-0") is None


def test_a_memory_store_reads_through_the_table(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, worker_store="memory", topic_partitions=3,
                        topic_touchpoints=TOPIC)  # fmt: skip
    table = create_app(settings).tables["journey_books"]
    state = StateTable(table, TOPIC, Untouchable())  # type: ignore[arg-type]
    with in_partition(TOPIC, 1):
        table.data["J1-0"] = b"book"
        assert state.read("J1-0") == b"book" and state.read("J1-1") is None
    assert state._direct is False


class Changelog:
    """The outbox as `persist` uses it: records sent, the last offset per partition back."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def send(self, records: Iterable[Record]) -> dict[tuple[str, int], int]:
        self.records.extend(records)
        last: dict[tuple[str, int], int] = {}
        for offset, record in enumerate(self.records):
            assert record.partition is not None
            last[(record.topic, record.partition)] = 100 + offset
        return last


def rocksdb_table(path: Path) -> Any:
    settings = Settings(data_dir=path, worker_store="rocksdb", topic_partitions=3,
                        topic_touchpoints=TOPIC)  # fmt: skip
    return create_app(settings).tables["journey_books"]


@pytest.mark.parametrize(("yield_every", "batch_keys"), [(60.0, 128), (0.0, 1), (0.0, 3)])
def test_a_checkpoint_writes_each_partitions_books_to_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yield_every: float, batch_keys: int
) -> None:
    """`persist` names the partition once per run of its keys, not once per key, and
    writes RocksDB in batches to the partition's database: every key must land in its own
    partition's database with that partition's changelog offset, byte for byte as the
    table's own per-key writes store them, also when the writes yield to the event loop
    after every batch (0 s), and the partition must not outlive the writes (a later table
    access would go to the wrong database)."""
    table = rocksdb_table(tmp_path / "batched")
    changelog = Changelog()
    state = StateTable(table, TOPIC, changelog)  # type: ignore[arg-type]
    entered: list[int] = []

    @contextmanager
    def counted(topic: str, partition: int) -> Iterator[None]:
        entered.append(partition)
        with in_partition(topic, partition):
            yield

    monkeypatch.setattr("pipeline.stream.state.in_partition", counted)
    monkeypatch.setattr("pipeline.stream.state.YIELD_EVERY", yield_every)
    monkeypatch.setattr("pipeline.stream.state.BATCH_KEYS", batch_keys)
    books = {p: {f"J{p}-{n}": f"book {p}-{n} ✓".encode() for n in range(4)} for p in (2, 0, 1)}

    async def persist_beside_a_reader() -> None:
        seen: list[object] = []

        async def reader() -> None:  # another task: the context API's reads
            for _ in range(20):
                seen.append(current_event())
                await asyncio.sleep(0)

        other = asyncio.ensure_future(reader())
        await state.persist(books)
        assert current_event() is None
        await other
        assert seen == [None] * 20

    asyncio.run(persist_beside_a_reader())
    by_key = rocksdb_table(tmp_path / "by_key")  # the table's own writes, one key at a time
    for partition, values in books.items():
        assert state.items(partition) == sorted(values.items())
        offset = table.data.persisted_offset(TP(state.changelog, partition))
        last = max(n for n, r in enumerate(changelog.records) if r.partition == partition)
        assert offset == 100 + last
        with in_partition(TOPIC, partition):
            for key, raw in values.items():
                by_key.data[key] = raw
        by_key.data.set_persisted_offset(TP(state.changelog, partition), offset)
        stored = table.data._db_for_partition(partition)
        expected = by_key.data._db_for_partition(partition)
        assert list(stored.items()) == list(expected.items())
    if yield_every:
        assert entered == [2, 0, 1]  # once per partition
    else:
        assert entered.count(2) >= 4 // batch_keys and sorted(set(entered)) == [0, 1, 2]
