"""Inserts cut to stay within ClickHouse's limit on partitions per INSERT.

ClickHouse refuses an INSERT whose rows fall into more than `max_partitions_per_insert_block`
partitions (100 by default): "Too many partitions for single INSERT block". A retry of the
same rows fails the same way, so a sink that retries would stall for ever. The tables
are partitioned by month of event time, so a backfill of nine years of history in one flush
is exactly such a batch. `split_by_partition` cuts a table's rows into chunks of at most
`limit` months each, every chunk with its own deduplication token derived from the batch's:
the same rows give the same chunks and tokens, so a retried chunk is still dropped by
ClickHouse rather than stored twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

Row = Mapping[str, Any]

MAX_PARTITIONS = 100  # ClickHouse's default max_partitions_per_insert_block

# Per table the sink writes: the columns whose month (toYYYYMM) picks a partition, in the
# table itself and in every materialized view its inserts feed (migrations 0001-0005;
# `journeys` and the views it feeds are not partitioned).
# A view's partition counts too: its insert is part of the same INSERT and hits the same
# limit. tests/unit/test_store_partition_split.py reads the migrations and fails when a
# partitioned table or view is missing here.
PARTITION_COLUMNS: dict[str, tuple[str, ...]] = {
    "touchpoints": ("occurred_at", "_ingested_at"),
    "dead_letters": ("received_at",),
    "journey_signals": ("effective_at",),
}


def split_by_partition(
    table: str, rows: Sequence[Row], token: str, limit: int = MAX_PARTITIONS
) -> list[tuple[list[Row], str]]:
    """`rows` as (chunk, dedup token) pairs, each chunk within `limit` partitions.

    A batch within the limit stays one chunk under `token` unchanged. Otherwise months are
    grouped in calendar order, `limit` to a chunk, so which chunk a row lands in depends
    only on the months present, never on the rows' order.
    """
    columns = PARTITION_COLUMNS.get(table)
    if not columns or len(rows) <= limit or _within(rows, columns, limit):
        return [(list(rows), token)]
    keys = [tuple(_month(row.get(column)) for column in columns) for row in rows]
    distinct = sorted(set(keys), key=_order)
    if len(distinct) <= limit:
        return [(list(rows), token)]
    chunk_of = {key: position // limit for position, key in enumerate(distinct)}
    chunks: list[list[Row]] = [[] for _ in range(-(-len(distinct) // limit))]
    for row, key in zip(rows, keys, strict=True):
        chunks[chunk_of[key]].append(row)
    return [(chunk, f"{token}#{n + 1}/{len(chunks)}") for n, chunk in enumerate(chunks)]


def _within(rows: Sequence[Row], columns: tuple[str, ...], limit: int) -> bool:
    """Whether the rows' partitions are surely at most `limit`, from each column's earliest
    and latest time alone: the rows' (month, month, ...) keys are at most the product of
    the months each column spans. Nearly every batch (a second of events) spans a month or
    two, and this costs a fraction of computing every row's months. False when unsure (a
    value that is not a datetime, naive and aware ones mixed): the caller counts."""
    bound = 1
    for column in columns:
        values: list[Any] = [row.get(column) for row in rows]
        if set(map(type, values)) != {datetime}:
            return False
        try:
            low, high = min(values), max(values)
        except TypeError:  # naive and aware
            return False
        # toYYYYMM is monotonic in time (aware values are compared as instants, then read
        # in UTC by `_month`), so every row's month lies between these two.
        first, last = _month(low), _month(high)
        assert first is not None and last is not None
        bound *= (last // 100 - first // 100) * 12 + last % 100 - first % 100 + 1
        if bound > limit:
            return False
    return True


def _month(value: object) -> int | None:
    """The partition a time falls in, as toYYYYMM reads it (the columns are UTC).

    None for a missing value: ClickHouse stores the column's default, one partition."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.year * 100 + value.month
    if isinstance(value, date):
        return value.year * 100 + value.month
    return None


def _order(key: tuple[int | None, ...]) -> tuple[tuple[bool, int], ...]:
    return tuple((month is None, month or 0) for month in key)
