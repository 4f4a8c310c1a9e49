"""A table's rows are cut into inserts that each stay within ClickHouse's partition limit.

ClickHouse refuses an INSERT touching more than 100 partitions; the sink retried such a
batch for ever. These tests check the cut (every row once, each chunk within the limit in
the table and its views, tokens that depend only on the rows) and that the columns it
looks at are the ones the migrations partition by.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.store import load_migrations
from pipeline.store.partition_split import (
    PARTITION_COLUMNS,
    _month,
    _within,
    split_by_partition,
)

MONTHS = st.integers(1900 * 12, 2299 * 12 + 11)


def moment(month_index: int, day: int = 1) -> datetime:
    year, month = divmod(month_index, 12)
    return datetime(year, month + 1, day, 12, tzinfo=UTC)


def month_of(value: datetime) -> tuple[int, int]:
    value = value.astimezone(UTC)
    return value.year, value.month


@st.composite
def touchpoint_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    occurred = draw(st.lists(MONTHS, min_size=0, max_size=80))
    ingested = draw(st.lists(MONTHS, min_size=1, max_size=3))
    return [
        {"event_id": f"e{n}", "occurred_at": moment(month, 1 + n % 28),
         "_ingested_at": moment(ingested[n % len(ingested)])}
        for n, month in enumerate(occurred)
    ]  # fmt: skip


@settings(max_examples=300)
@given(touchpoint_rows(), st.integers(1, 12), st.randoms(use_true_random=False))
def test_every_row_lands_in_one_chunk_within_the_limit(
    rows: list[dict[str, Any]], limit: int, shuffler: random.Random
) -> None:
    chunks = split_by_partition("touchpoints", rows, "touchpoints:t-0-0-9", limit)
    assert sorted(r["event_id"] for chunk, _ in chunks for r in chunk) == sorted(
        r["event_id"] for r in rows
    )
    for chunk, _ in chunks:
        for column in PARTITION_COLUMNS["touchpoints"]:
            assert len({month_of(row[column]) for row in chunk}) <= limit
    tokens = [token for _, token in chunks]
    assert len(set(tokens)) == len(tokens)
    # The same rows in another order: the same chunks under the same tokens (a replay).
    shuffled = rows[:]
    shuffler.shuffle(shuffled)
    again = split_by_partition("touchpoints", shuffled, "touchpoints:t-0-0-9", limit)
    assert {t: sorted(r["event_id"] for r in c) for c, t in again} == {
        t: sorted(r["event_id"] for r in c) for c, t in chunks
    }


def test_a_batch_within_the_limit_is_one_insert_under_its_own_token() -> None:
    rows = [{"occurred_at": moment(2026 * 12 + m), "_ingested_at": moment(2026 * 12)}
            for m in range(12)]  # fmt: skip
    assert split_by_partition("touchpoints", rows, "tok") == [(rows, "tok")]
    assert split_by_partition("pipeline_metrics", rows * 20, "tok") == [(rows * 20, "tok")]


def test_three_hundred_months_make_three_inserts_of_a_hundred() -> None:
    rows = [{"effective_at": moment(2000 * 12 + m)} for m in range(300)]
    chunks = split_by_partition("journey_signals", rows, "journey_signals:x")
    assert [len(chunk) for chunk, _ in chunks] == [100, 100, 100]
    assert [t for _, t in chunks] == [f"journey_signals:x#{n}/3" for n in (1, 2, 3)]
    assert chunks[0][0][0] is rows[0]  # earliest months first, rows as given


def test_months_are_read_in_utc_as_the_tables_partition() -> None:
    plus_two = timezone(timedelta(hours=2))
    rows = [{"effective_at": datetime(2026, 3, 1, 1, tzinfo=plus_two)},  # February in UTC
            {"effective_at": datetime(2026, 2, 10, tzinfo=UTC)},
            {"effective_at": None}]  # fmt: skip
    chunks = split_by_partition("journey_signals", rows, "t", limit=1)
    assert [len(chunk) for chunk, _ in chunks] == [2, 1]


EARLIEST, LATEST = (datetime(2025, 11, 1, tzinfo=UTC).replace(tzinfo=None),
                    datetime(2026, 5, 1, tzinfo=UTC).replace(tzinfo=None))  # fmt: skip
AWARE = st.datetimes(EARLIEST, LATEST, timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]))  # fmt: skip
TIMES = st.one_of(AWARE, st.datetimes(EARLIEST, LATEST), st.dates(EARLIEST.date(), LATEST.date()),
                  st.none())  # fmt: skip


@settings(max_examples=400)
@given(
    st.one_of(st.lists(st.tuples(AWARE, AWARE), max_size=30),
              st.lists(st.tuples(TIMES, TIMES), max_size=30)),
    st.integers(1, 12),
)  # fmt: skip
def test_the_quick_bound_never_undercounts_the_partitions(
    times: list[tuple[Any, Any]], limit: int
) -> None:
    """A batch is left whole, uncounted, when each column's earliest and latest time bound
    its partitions within the limit: the bound must hold for any times (months read in UTC
    across a month's end, naive, mixed, dates, missing), and the split must be what
    counting every row gives (one chunk under the token when within the limit)."""
    rows = [{"event_id": f"e{n}", "occurred_at": occurred, "_ingested_at": ingested}
            for n, (occurred, ingested) in enumerate(times)]  # fmt: skip
    columns = PARTITION_COLUMNS["touchpoints"]
    partitions = len({tuple(_month(row[c]) for c in columns) for row in rows})
    if _within(rows, columns, limit):
        assert partitions <= limit
    chunks = split_by_partition("touchpoints", rows, "tok", limit)
    assert (chunks == [(rows, "tok")]) == (partitions <= limit)


_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\) ENGINE"
                    r".*?(?:PARTITION BY (.+?)\n|;)", re.DOTALL)  # fmt: skip
_VIEW = re.compile(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\s+TO (\w+) AS\s+SELECT(.*?)"
                   r"\bFROM (\w+)", re.DOTALL)  # fmt: skip
_DROP = re.compile(r"DROP (?:VIEW|TABLE) IF EXISTS (\w+)")


def test_the_split_knows_every_partition_an_insert_of_the_sink_reaches() -> None:
    """Parse the migrations: each partitioned table the sink writes, and each partitioned
    view target fed by one, must be partitioned by month of a column the split reads."""
    sql = "\n".join(m.sql for m in load_migrations())
    dropped = set(_DROP.findall(sql))
    partitions = {name: by.strip() for name, _, by in _TABLE.findall(sql) if by}
    partitions = {name: by for name, by in partitions.items() if name not in dropped}
    reached: list[tuple[str, str, str]] = []  # (sink table, partitioned table, expression)
    for table in PARTITION_COLUMNS:
        if table in partitions:
            reached.append((table, table, partitions[table]))
    for view, target, select, source in _VIEW.findall(sql):
        if source in PARTITION_COLUMNS and target in partitions and view not in dropped:
            column = re.fullmatch(r"toYYYYMM\((\w+)\)", partitions[target])
            assert column, f"{target}: PARTITION BY {partitions[target]}, expected toYYYYMM"
            derived = re.search(rf"(\w+)\((\w+)\) AS {column.group(1)}\b", select)
            assert derived, f"{target}.{column.group(1)}: not derived from a column of {source}"
            reached.append((source, target, f"toYYYYMM({derived.group(2)})"))
    assert {target for _, target, _ in reached} >= {
        "touchpoints", "dead_letters", "journey_signals", "touchpoints_per_minute",
        "touchpoints_per_hour", "touchpoints_ingested_per_minute", "rejections_per_hour",
        "signals_by_hour", "signals_by_department", "accepted_per_hour",
    }  # fmt: skip
    for source, target, expression in reached:
        column = re.fullmatch(r"toYYYYMM\((\w+)\)", expression)
        assert column, f"{target}: PARTITION BY {expression}, expected toYYYYMM(column)"
        assert column.group(1) in PARTITION_COLUMNS[source], (source, target, expression)
    read = {(source, column) for source, columns in PARTITION_COLUMNS.items() for column in columns}
    used = {(source, expression[len("toYYYYMM(") : -1]) for source, _, expression in reached}
    assert read == used, "PARTITION_COLUMNS names a column no partition depends on"
