"""The worker caps RocksDB's memory: its options come from one setting, split per partition."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import Settings, load_settings


def test_rocksdb_memory_is_split_across_the_partition_databases() -> None:
    options = Settings(worker_rocksdb_memory_mb=128, topic_partitions=4).worker_rocksdb_options()
    assert options == {
        "block_cache_size": 16 << 20,
        "write_buffer_size": 8 << 20,
        "max_write_buffer_number": 2,
    }
    many = Settings(worker_rocksdb_memory_mb=128, topic_partitions=256).worker_rocksdb_options()
    assert many["block_cache_size"] == 2 << 20  # floor: 4 MiB per database
    assert many["write_buffer_size"] == 1 << 20


def test_rocksdb_memory_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_WORKER_ROCKSDB_MEMORY_MB", "512")
    assert load_settings().worker_rocksdb_memory_mb == 512


def test_the_worker_opens_its_rocksdb_databases_with_these_options(tmp_path: Path) -> None:
    from pipeline.stream.worker import create_app

    settings = Settings(data_dir=tmp_path, worker_store="rocksdb", worker_rocksdb_memory_mb=64)
    store = create_app(settings).tables["journey_books"].data
    wanted = settings.worker_rocksdb_options()
    assert store.rocksdb_options.block_cache_size == wanted["block_cache_size"]
    assert store.rocksdb_options.write_buffer_size == wanted["write_buffer_size"]
    assert store.rocksdb_options.max_write_buffer_number == wanted["max_write_buffer_number"]
