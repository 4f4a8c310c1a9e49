"""What the erasure tests check in every store: the tables that name customers, and the
aggregates' totals that must equal a run whose input never had the erased customers."""

from __future__ import annotations

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
