"""Which ClickHouse failures the sink retries and which stop the worker."""

from __future__ import annotations

import pytest

from pipeline.store.base import StoreError, TransientStoreError, classify_error


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)",
         TransientStoreError),
        ("Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly"
         " slower than inserts. (TOO_MANY_PARTS)", TransientStoreError),
        ("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space."
         " (NOT_ENOUGH_SPACE)", TransientStoreError),
        ("Cannot write to file /data/x.bin: No space left on device", TransientStoreError),
        # The batch's shape: the same insert fails every time.
        ("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than"
         " 100). (TOO_MANY_PARTITIONS)", StoreError),
        ("Code: 16. DB::Exception: No such column lost_points in table journeys."
         " (NO_SUCH_COLUMN_IN_TABLE)", StoreError),
        ("Code: 60. DB::Exception: Table journeys.journeys does not exist. (UNKNOWN_TABLE)",
         StoreError),
    ],
)  # fmt: skip
def test_only_what_a_retry_can_fix_is_transient(message: str, expected: type) -> None:
    assert classify_error(message) is expected
