"""What the erasure tests check in every store: the tables that name customers, and the
aggregates' totals that must equal a run whose input never had the erased customers; and
`check_erasure`, the erasure function on a seeded month in any store (chdb, the server path,
the cluster layout) against a store that never had the customers, and
`check_erasure_against_chdb`, the same with a chdb database of its own as that store."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pipeline.journey import load_score_model
from pipeline.report.data import ReportFilter
from pipeline.report.queries import load_report
from pipeline.simulate import SimulationConfig, simulate
from pipeline.store import Store, apply_migrations
from pipeline.store.embedded import EmbeddedStore, open_embedded
from pipeline.store.erase import Eraser, load_ledger, refresh_views
from pipeline.stream.offline import offline_rows, write_rows

SALT = "test-salt-0123456789abcdef"

# Every table holding a customer_id, and the aggregates' totals, to compare with a run that
# never had the erased customers. Not the loop-closure figures (alert_outcomes): which
# alerts are raised, and when, follows the partition's event-time clock, which the erased
# customers' events moved too; that none of their alerts is left is checked by `alerts`.
CUSTOMER_TABLES = ("touchpoints", "journeys", "journey_signals", "signals_by_hour",
                   "signals_by_department", "journey_band_entries", "promises", "resolutions",
                   "recent_journey_snapshots", "open_promises", "resolution_times",
                   "alerts")  # fmt: skip
TOTALS = {
    "per_minute": "SELECT uniqMerge(events) AS n FROM touchpoints_per_minute",
    "per_hour": "SELECT uniqMerge(events) AS n, uniqMerge(journeys) AS j FROM touchpoints_per_hour",
    "accepted": "SELECT uniqMerge(events) AS n FROM accepted_per_hour",
    "blocks": "SELECT span_days, first_day, uniqMerge(journeys) AS j "
    "FROM journeys_active_block_parts GROUP BY span_days, first_day ORDER BY span_days, first_day",
    "day_stats": "SELECT start_day, band, sum(journeys) AS n, round(sum(score_sum), 6) AS s "
    "FROM journey_day_stats GROUP BY start_day, band ORDER BY start_day, band",
    "cells": "SELECT day, department, stage, signal, sum(signals) AS n FROM signal_day_cells "
    "GROUP BY day, department, stage, signal ORDER BY day, department, stage, signal",
    "rejections": "SELECT reason_code, uniqMerge(rejections) AS n FROM rejections_per_hour "
    "GROUP BY reason_code ORDER BY reason_code",
    "dead_letter_codes": "SELECT reason_code, count() AS n FROM dead_letters FINAL "
    "GROUP BY reason_code ORDER BY reason_code",
}


def totals(store: Store) -> dict[str, object]:
    return {name: store.query(sql) for name, sql in TOTALS.items()}


def erasure_database(chdb_dir: Path) -> EmbeddedStore:
    """A migrated chdb database of its own, for one erasure test to drop when it is done."""
    store = open_embedded(chdb_dir, f"erase_{uuid.uuid4().hex[:8]}")
    apply_migrations(store)
    return store


def check_erasure_against_chdb(erasing: Store, chdb_dir: Path) -> None:
    """`check_erasure` with a new chdb database as the reference (the server and cluster
    paths), dropped afterwards."""
    reference = erasure_database(chdb_dir)
    try:
        check_erasure(erasing, reference)
    finally:
        reference.drop_database()


def check_erasure(erasing: Store, reference: Store) -> None:
    config = SimulationConfig(customers=120, seed=22, start=datetime(2026, 3, 1, tzinfo=UTC))
    deliveries = simulate(config)[0]
    model = load_score_model()
    write_rows(erasing, offline_rows(((d.value, config.end) for d in deliveries), config.end,
                                     model))  # fmt: skip
    top = erasing.query("SELECT customer_id, count() AS n FROM touchpoints GROUP BY customer_id "
                        "ORDER BY n DESC, customer_id LIMIT 3")  # fmt: skip
    erased = [str(r["customer_id"]) for r in top]
    kept = [d for d in deliveries if not any(f'"{c}"'.encode() in d.value for c in erased)]
    write_rows(reference, offline_rows(((d.value, config.end) for d in kept), config.end,
                                       model))  # fmt: skip
    for store in (erasing, reference):  # the refreshable views' first state, as a worker's
        refresh_views(store)

    eraser = Eraser(erasing)
    outcomes = eraser.erase(erased, SALT, load_ledger(erasing, SALT))
    eraser.record(outcomes, "ticket 22", "r1", "test")
    assert all(o.removed["touchpoints"] > 0 and not o.erased_before for o in outcomes)
    for table in (*CUSTOMER_TABLES, "dead_letters"):
        column = "raw" if table == "dead_letters" else "customer_id"
        for customer in erased:
            left = erasing.query(f"SELECT count() AS n FROM {table} WHERE position({column}, "
                                 "{c:String}) > 0", {"c": customer})  # fmt: skip
            assert left == [{"n": 0}], (table, customer)
    assert totals(erasing) == totals(reference)
    at = datetime(2026, 5, 1, tzinfo=UTC)
    report, expected = (load_report(s, ReportFilter(), now=at) for s in (erasing, reference))
    # Not the loop-closure figures: alerts follow the partition's event-time clock, which
    # the erased customers' events moved too (tests/support/erasure.py); theirs are gone.
    assert replace(report, loop_closure=[]) == replace(expected, loop_closure=[])
    for customer in erased:
        outcomes = erasing.query("SELECT count() AS n FROM alert_outcomes WHERE customer_id = "
                                 "{c:String}", {"c": customer})  # fmt: skip
        assert outcomes == [{"n": 0}], customer
    assert not any(c in str(report) for c in erased)

    again = eraser.erase(erased, SALT, load_ledger(erasing, SALT))
    assert [o.rows_removed for o in again] == [0, 0, 0]
    assert all(o.erased_before for o in again)
    ledger = erasing.query("SELECT customer_hash, rows_removed FROM erasures")
    assert len(ledger) == 3 and not any(c in json.dumps(ledger) for c in erased)
    assert load_ledger(erasing, SALT).is_erased(erased[0])
