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
from pipeline.dashboards.operations import (
    BROKEN_PROMISES_24H,
    REPEAT_AND_LOST_CONTEXT,
    REPEAT_AND_LOST_CONTEXT_BY_DEPARTMENT,
)
from pipeline.dashboards.pipeline_health import QUALITY_BY_DEPARTMENT
from pipeline.journey import DEFAULT_MODEL_PATH
from pipeline.store import apply_migrations, load_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded
from pipeline.store.models import LIVE, record_model
from pipeline.store.refresh import refresh_now
from tests.support.dashboards.engine_rows import SimulatedMonth
from tests.support.dashboards.macros import QueryContext, expand
from tests.support.dashboards.sample import insert_sample

# (days back of the range's start, days back of its end): a month, a week, single days,
# ranges starting and ending mid-history, and ranges that cross 2-, 4- ... 32-day blocks.
RANGES = [(30, 0), (7, 0), (0, 0), (1, 1), (3, 2), (12, 5), (17, 3), (25, 9), (33, 1)]


def context(
    month: SimulatedMonth, days_from: int, days_to: int, department: str | None = None
) -> QueryContext:
    """The month's context over these days before its end, for `department` if given."""
    variables = {**month.context.variables, **({"department": department} if department else {})}
    return replace(month.context, time_from=month.now - timedelta(days=days_from),
                   time_to=month.now - timedelta(days=days_to), variables=variables)  # fmt: skip


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


def assert_heatmap_matches_raw(store: EmbeddedStore, month: SimulatedMonth) -> None:
    for days_from, days_to in RANGES:
        ctx = context(month, days_from, days_to)
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
def sample_db(chdb_dir: Any, simulated_month: SimulatedMonth) -> Any:
    store = open_embedded(chdb_dir, "scale_tables_sample")
    apply_migrations(store)
    insert_sample(store, simulated_month.sample, batch=1000)
    yield store
    store.drop_database()


def test_the_heatmap_cells_count_each_losing_journey_once_per_range(
    sample_db: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    assert raw_heatmap(sample_db, context(simulated_month, 30, 0)), "the sample has losing signals"
    assert_heatmap_matches_raw(sample_db, simulated_month)


def test_a_retracted_signal_leaves_the_journey_counts(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    signals = simulated_month.sample.journey_signals
    insert_sample(fresh_store, simulated_month.sample, batch=1000)
    ctx = context(simulated_month, 30, 0)
    # A journey with one losing signal in its cell: retracting it removes the journey there.
    signal = next(
        s for s in signals
        if s["impact"] < 0 and s["effective_at"] <= simulated_month.now
        and sum(1 for o in signals
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
    assert_heatmap_matches_raw(fresh_store, simulated_month)


SIGNAL_PANELS = [POINTS_BY_SIGNAL, PROMISE_KEPT_RATE, SIGNALS_BY_REASON_AND_STAGE, WORST_JOURNEYS,
                 BROKEN_PROMISES_24H, REPEAT_AND_LOST_CONTEXT,
                 REPEAT_AND_LOST_CONTEXT_BY_DEPARTMENT, BROKEN_PROMISES_SPIKE]  # fmt: skip


@pytest.mark.parametrize("sql", SIGNAL_PANELS)
@pytest.mark.parametrize("department", ["maintenance", "customer_service", "billing"])
def test_signal_panels_by_department_answer_as_signals_by_hour_does(
    sample_db: EmbeddedStore, simulated_month: SimulatedMonth, sql: str, department: str
) -> None:
    assert "signals_by_department FINAL" in sql
    as_before = sql.replace("signals_by_department", "signals_by_hour")
    ctx = context(simulated_month, 7, 0, department)
    found = answer(sample_db, sql, ctx)
    assert found == answer(sample_db, as_before, ctx)
    if sql is POINTS_BY_SIGNAL:
        assert found, "the sample has signals for the department"


# The department's two grouped panels as they were written before they were split in steps
# (issue 8): one pass over the signals with FINAL. The panels must answer exactly these.
_REFERENCE_SIGNALS = """FROM signals_by_hour FINAL
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime AND $__timeFilter(effective_at)
  AND active = 1 AND department = decodeURLComponent('${department:percentencode}')"""
REFERENCE_REASON_AND_STAGE = f"""
SELECT signal, stage, count() AS signals, round(sum(impact), 1) AS points,
       uniqExact(journey_id) AS journeys,
       argMax(reason, (effective_at, signal_id)) AS example_reason
{_REFERENCE_SIGNALS}
GROUP BY signal, stage
ORDER BY points, signal, stage
"""
REFERENCE_WORST_JOURNEYS = f"""
SELECT journey_id, any(customer_id) AS customer_id, round(sum(impact), 1) AS points,
       count() AS signals, arrayStringConcat(arraySort(groupUniqArray(signal)), ', ') AS kinds
{_REFERENCE_SIGNALS}
GROUP BY journey_id
HAVING points < 0
ORDER BY points, journey_id
LIMIT 20
"""
GROUPED = [(SIGNALS_BY_REASON_AND_STAGE, REFERENCE_REASON_AND_STAGE),
           (WORST_JOURNEYS, REFERENCE_WORST_JOURNEYS)]  # fmt: skip


def assert_grouped_panels_match_reference(store: EmbeddedStore, month: SimulatedMonth) -> None:
    for department in ["maintenance", "customer_service", "billing", "sales"]:
        for days_from, days_to in [(7, 0), (30, 0), (0, 0), (3, 2), (12, 5)]:
            ctx = context(month, days_from, days_to, department)
            for sql, reference in GROUPED:
                assert answer(store, sql, ctx) == answer(store, reference, ctx), (
                    department, days_from, days_to, sql[:40])  # fmt: skip


def test_grouped_department_panels_answer_as_one_pass_over_the_signals(
    sample_db: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    ctx = context(simulated_month, 30, 0, "maintenance")
    assert len(answer(sample_db, REFERENCE_WORST_JOURNEYS, ctx)) == 20
    assert len(answer(sample_db, REFERENCE_REASON_AND_STAGE, ctx)) > 5
    assert_grouped_panels_match_reference(sample_db, simulated_month)


def test_grouped_department_panels_after_replays_retractions_and_ties(
    fresh_store: EmbeddedStore, simulated_month: SimulatedMonth
) -> None:
    """Replayed rows, a retraction of a worst journey's signals and of a cell's latest
    signal, and a tie on the latest moment (the greater signal_id gives the reason)."""
    insert_sample(fresh_store, simulated_month.sample, batch=1000)
    ctx = context(simulated_month, 7, 0, "maintenance")
    worst = answer(fresh_store, REFERENCE_WORST_JOURNEYS, ctx)
    cells = answer(fresh_store, REFERENCE_REASON_AND_STAGE, ctx)
    signals = [s for s in simulated_month.sample.journey_signals
               if s["department"] == "maintenance"
               and s["effective_at"] <= simulated_month.now]  # fmt: skip
    fresh_store.insert("journey_signals", list(reversed(signals)))  # a replay, same versions
    # Retract every signal of the worst journey: it must leave the table.
    gone = [s for s in signals if s["journey_id"] == worst[0]["journey_id"]]
    # Retract the latest signal of the first cell: its reason must change.
    cell = (cells[0]["signal"], cells[0]["stage"])
    latest = max((s for s in signals if (s["signal"], s["stage"]) == cell
                  and s["effective_at"] >= ctx.time_from and s.get("active", 1) == 1),
                 key=lambda s: (s["effective_at"], s["signal_id"]))  # fmt: skip
    retracted = [{**s, "active": 0, "version": s["version"] + 1} for s in [*gone, latest]]
    # Two new signals of another cell at the same moment: the greater id's reason is shown.
    other = cells[-1]
    tie = max(
        s["effective_at"]
        for s in signals
        if (s["signal"], s["stage"]) == (other["signal"], other["stage"])
    )
    twins = [{**latest, "signal_id": f"zz-tie-{n}", "signal": other["signal"],
              "stage": other["stage"], "effective_at": tie, "active": 1,
              "reason": f"tie {n}", "version": 1} for n in (1, 2)]  # fmt: skip
    fresh_store.insert("journey_signals", retracted + twins)
    fresh_store.insert("journey_signals", retracted[:1])  # the retraction replayed as well
    after = answer(fresh_store, WORST_JOURNEYS, ctx)
    assert worst[0]["journey_id"] not in [r["journey_id"] for r in after]
    reasons = {(r["signal"], r["stage"]): r["example_reason"]
               for r in answer(fresh_store, SIGNALS_BY_REASON_AND_STAGE, ctx)}  # fmt: skip
    assert reasons[(other["signal"], other["stage"])] == "tie 2"
    assert_grouped_panels_match_reference(fresh_store, simulated_month)
    fresh_store.execute("OPTIMIZE TABLE signals_by_department FINAL")
    fresh_store.execute("OPTIMIZE TABLE signals_by_hour FINAL")
    assert_grouped_panels_match_reference(fresh_store, simulated_month)


@pytest.mark.parametrize("days", [0, 1, 7, 30])
def test_data_quality_counts_what_touchpoints_per_hour_counts(
    sample_db: EmbeddedStore, simulated_month: SimulatedMonth, days: int
) -> None:
    assert "FROM accepted_per_hour" in QUALITY_BY_DEPARTMENT
    as_before = QUALITY_BY_DEPARTMENT.replace("accepted_per_hour", "touchpoints_per_hour")
    ctx = replace(context(simulated_month, days, 0),
                  time_from=simulated_month.now - timedelta(days=days, hours=6))  # fmt: skip
    found = answer(sample_db, QUALITY_BY_DEPARTMENT, ctx)
    assert found == answer(sample_db, as_before, ctx)
    assert any(row["accepted"] for row in found)


def test_0005_fills_its_tables_from_history_stored_before_it(
    sample_db: EmbeddedStore, simulated_month: SimulatedMonth, chdb_dir: Any
) -> None:
    """A store migrated to 0004 with data in it, then migrated to 0005: same panels."""
    earlier = [m for m in load_migrations() if m.version < 5]
    store = open_embedded(chdb_dir, "scale_tables_backfill")
    try:
        apply_migrations(store, earlier)
        # Not insert_sample: it would refresh 0005's views, which do not exist yet. History
        # goes into the tables the migrations before 0005 made; the sample's tables that
        # later ones add (alerts, 0008) are filled once they exist.
        made = {row["name"] for row in store.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase()")}  # fmt: skip
        tables = simulated_month.sample.tables()
        assert {"touchpoints", "journeys", "journey_signals"} <= made
        for table in [t for t in tables if t in made]:
            store.insert(table, tables[table])
        later = [m.version for m in load_migrations() if m.version >= 5]
        assert [m.version for m in apply_migrations(store)] == later  # 0005 and what follows
        for table in [t for t in tables if t not in made]:
            store.insert(table, tables[table])
        record_model(store, "v1", LIVE, DEFAULT_MODEL_PATH.read_text())  # as in insert_sample
        refresh_now(store)
        assert_heatmap_matches_raw(store, simulated_month)
        for sql in [
            *SIGNAL_PANELS,
            LOST_POINTS_HEATMAP,
            JOURNEYS_AFFECTED_HEATMAP,
            QUALITY_BY_DEPARTMENT,
        ]:
            month = simulated_month.context
            assert answer(store, sql, month) == answer(sample_db, sql, month)
    finally:
        store.drop_database()
