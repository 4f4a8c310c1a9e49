"""The tables migration 0005 added for speed give the answers the raw rows give.

Each panel that moved to one of them is compared with the same question asked of the rows
it is folded from (signals_by_hour FINAL, touchpoints), over several time ranges, after a
retraction, and on a database where 0005 was applied to history already stored (backfill).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.dashboards.alerts import BROKEN_PROMISES_SPIKE
from pipeline.dashboards.department import (
    POINTS_BY_SIGNAL,
    PROMISE_KEPT_RATE,
    SIGNALS_BY_REASON_AND_STAGE,
    WORST_JOURNEYS,
)
from pipeline.dashboards.heatmap import JOURNEYS_AFFECTED_HEATMAP, LOST_POINTS_HEATMAP
from pipeline.dashboards.macros import QueryContext, expand
from pipeline.dashboards.operations import (
    BROKEN_PROMISES_24H,
    REPEAT_AND_LOST_CONTEXT,
    REPEAT_AND_LOST_CONTEXT_BY_DEPARTMENT,
)
from pipeline.dashboards.pipeline_health import QUALITY_BY_DEPARTMENT
from pipeline.dashboards.refresh import refresh_now
from pipeline.store import apply_migrations, load_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded
from tests.integration.test_dashboards_queries import ANCHOR, CONTEXT, SAMPLE, insert_sample

# (days back of the range's start, days back of its end): a month, a week, single days,
# ranges starting and ending mid-history, and ranges that cross 2-, 4- ... 32-day blocks.
RANGES = [(30, 0), (7, 0), (0, 0), (1, 1), (3, 2), (12, 5), (17, 3), (25, 9), (33, 1)]


def context(days_from: int, days_to: int) -> QueryContext:
    return replace(CONTEXT, time_from=ANCHOR - timedelta(days=days_from),
                   time_to=ANCHOR - timedelta(days=days_to))  # fmt: skip


def day(moment: datetime) -> str:
    return f"toDate('{moment:%Y-%m-%d}')"


def answer(store: EmbeddedStore, sql: str, ctx: QueryContext) -> list[dict[str, Any]]:
    return store.query(expand(sql, ctx))


def raw_heatmap(store: EmbeddedStore, ctx: QueryContext) -> dict[tuple[str, str], Any]:
    """Lost points and losing journeys per cell, straight from the signals."""
    rows = store.query(f"""
        SELECT department, stage, round(sum(-impact), 1) AS lost, uniqExact(journey_id) AS n
        FROM signals_by_hour FINAL
        WHERE active = 1 AND impact < 0 AND toDate(effective_at) >= {day(ctx.time_from)}
          AND toDate(effective_at) <= {day(ctx.time_to)}
        GROUP BY department, stage""")
    return {(r["department"], r["stage"]): (r["lost"], r["n"]) for r in rows}


def raw_active_journeys(store: EmbeddedStore, ctx: QueryContext) -> int:
    return int(
        store.query(f"""
        SELECT uniqExact(journey_id) AS n FROM touchpoints
        WHERE toDate(occurred_at) >= {day(ctx.time_from)}
          AND toDate(occurred_at) <= {day(ctx.time_to)}""")[0]["n"]
    )


def assert_heatmap_matches_raw(store: EmbeddedStore) -> None:
    for days_from, days_to in RANGES:
        ctx = context(days_from, days_to)
        raw = raw_heatmap(store, ctx)
        cells = store.query(expand(LOST_POINTS_HEATMAP, ctx))
        assert {(r["department"], r["stage"]): (r["lost_points"], r["journeys_affected"])
                for r in cells} == raw, (days_from, days_to)  # fmt: skip
        active = max(raw_active_journeys(store, ctx), 1)
        shares = store.query(expand(JOURNEYS_AFFECTED_HEATMAP, ctx))
        assert {(r["department"], r["stage"]): r["journeys_affected_pct"] for r in shares} == {
            cell: round(100 * n / active, 2) for cell, (_, n) in raw.items()
        }, (days_from, days_to)


@pytest.fixture(scope="module")
def sample_db(chdb_dir: Any) -> Any:
    store = open_embedded(chdb_dir, "scale_tables_sample")
    apply_migrations(store)
    insert_sample(store, SAMPLE, batch=1000)
    yield store
    store.drop_database()


def test_the_heatmap_cells_count_each_losing_journey_once_per_range(
    sample_db: EmbeddedStore,
) -> None:
    assert raw_heatmap(sample_db, context(30, 0)), "the sample has losing signals"
    assert_heatmap_matches_raw(sample_db)


def test_a_retracted_signal_leaves_the_journey_counts(fresh_store: EmbeddedStore) -> None:
    insert_sample(fresh_store, SAMPLE, batch=1000)
    ctx = context(30, 0)
    # A journey with one losing signal in its cell: retracting it removes the journey there.
    signal = next(
        s for s in SAMPLE.journey_signals
        if s["impact"] < 0 and s["effective_at"] <= ANCHOR
        and sum(1 for o in SAMPLE.journey_signals
                if (o["journey_id"], o["department"], o["stage"])
                == (s["journey_id"], s["department"], s["stage"]) and o["impact"] < 0) == 1
    )  # fmt: skip
    cell = (signal["department"], signal["stage"])
    before = raw_heatmap(fresh_store, ctx)[cell]
    fresh_store.insert(
        "journey_signals", [{**signal, "active": 0, "version": signal["version"] + 1}]
    )
    refresh_now(fresh_store)
    after = {(r["department"], r["stage"]): r["journeys_affected"]
             for r in fresh_store.query(expand(LOST_POINTS_HEATMAP, ctx))}  # fmt: skip
    assert after.get(cell, 0) == before[1] - 1
    assert_heatmap_matches_raw(fresh_store)


SIGNAL_PANELS = [POINTS_BY_SIGNAL, PROMISE_KEPT_RATE, SIGNALS_BY_REASON_AND_STAGE, WORST_JOURNEYS,
                 BROKEN_PROMISES_24H, REPEAT_AND_LOST_CONTEXT,
                 REPEAT_AND_LOST_CONTEXT_BY_DEPARTMENT, BROKEN_PROMISES_SPIKE]  # fmt: skip


@pytest.mark.parametrize("sql", SIGNAL_PANELS)
@pytest.mark.parametrize("department", ["maintenance", "customer_service", "billing"])
def test_signal_panels_by_department_answer_as_signals_by_hour_does(
    sample_db: EmbeddedStore, sql: str, department: str
) -> None:
    assert "signals_by_department FINAL" in sql
    as_before = sql.replace("signals_by_department", "signals_by_hour")
    ctx = replace(context(7, 0), variables={**CONTEXT.variables, "department": department})
    found = answer(sample_db, sql, ctx)
    assert found == answer(sample_db, as_before, ctx)
    if sql is POINTS_BY_SIGNAL:
        assert found, "the sample has signals for the department"


@pytest.mark.parametrize("days", [0, 1, 7, 30])
def test_data_quality_counts_what_touchpoints_per_hour_counts(
    sample_db: EmbeddedStore, days: int
) -> None:
    assert "FROM accepted_per_hour" in QUALITY_BY_DEPARTMENT
    as_before = QUALITY_BY_DEPARTMENT.replace("accepted_per_hour", "touchpoints_per_hour")
    ctx = replace(context(days, 0), time_from=ANCHOR - timedelta(days=days, hours=6))
    found = answer(sample_db, QUALITY_BY_DEPARTMENT, ctx)
    assert found == answer(sample_db, as_before, ctx)
    assert any(row["accepted"] for row in found)


def test_0005_fills_its_tables_from_history_stored_before_it(
    sample_db: EmbeddedStore, chdb_dir: Any
) -> None:
    """A store migrated to 0004 with data in it, then migrated to 0005: same panels."""
    earlier = [m for m in load_migrations() if m.version < 5]
    store = open_embedded(chdb_dir, "scale_tables_backfill")
    try:
        apply_migrations(store, earlier)
        for table, rows in SAMPLE.tables().items():  # insert_sample would refresh 0005's view
            store.insert(table, rows)
        assert [m.version for m in apply_migrations(store)] == [5]
        refresh_now(store)
        assert_heatmap_matches_raw(store)
        for sql in [
            *SIGNAL_PANELS,
            LOST_POINTS_HEATMAP,
            JOURNEYS_AFFECTED_HEATMAP,
            QUALITY_BY_DEPARTMENT,
        ]:
            assert answer(store, sql, CONTEXT) == answer(sample_db, sql, CONTEXT)
    finally:
        store.drop_database()
