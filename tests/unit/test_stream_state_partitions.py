"""A partition's recovery reads its own books, not every partition's.

At each rebalance every assigned partition recovers (its clock and the wake-ups of its
books, `Runtime._recover`); reading through the table, RocksDB iterated every assigned
partition's database for each, so a rebalance read partitions x books. The worker's own
RocksDB table (one database per partition, as `journeys run` opens it) is written as a
checkpoint writes it and read back per partition.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings
from pipeline.stream.state import StateTable, in_partition
from pipeline.stream.worker import create_app
from tests.support.runtime_rig import TOPIC, Untouchable


def test_a_partition_reads_the_books_of_its_own_database_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, worker_store="rocksdb", topic_partitions=3,
                        topic_touchpoints=TOPIC)  # fmt: skip
    table = create_app(settings).tables["journey_books"]
    state = StateTable(table, TOPIC, Untouchable())  # type: ignore[arg-type]
    for partition in range(3):
        with in_partition(TOPIC, partition):
            for n in range(2):
                table.data[f"J{partition}-{n}"] = f"book {partition}-{n}".encode()
    assert state.items(1) == [("J1-0", b"book 1-0"), ("J1-1", b"book 1-1")]
    with in_partition(TOPIC, 2):
        assert state.read("J2-1") == b"book 2-1"  # what the processor reads, as written
