-- The leadership heatmap looks at a month: read from signals_by_hour FINAL, its cells cost
-- ~40 ms at 1M touchpoints and grow with the signals in the range. This refreshable view
-- folds the active signals into one row per day x department x stage x signal every five
-- minutes (from signals_by_hour FINAL, so replays and retractions are already resolved);
-- the journeys per cell stay `uniq` states so a month's cells merge without counting a
-- journey twice. The price: whole days, and up to five minutes behind.
CREATE TABLE IF NOT EXISTS signal_day_cells (
    day Date,
    department LowCardinality(String),
    stage LowCardinality(String),
    signal LowCardinality(String),
    signals UInt64,
    points Float64,
    points_lost Float64,
    losing_journeys AggregateFunction(uniq, String)
) ENGINE = MergeTree
ORDER BY (day, department, stage, signal);

CREATE MATERIALIZED VIEW IF NOT EXISTS signal_day_cells_mv
REFRESH EVERY 5 MINUTE TO signal_day_cells AS
SELECT
    toDate(effective_at) AS day,
    department,
    stage,
    signal,
    count() AS signals,
    sum(impact) AS points,
    sumIf(-impact, impact < 0) AS points_lost,
    uniqStateIf(journey_id, impact < 0) AS losing_journeys
FROM signals_by_hour FINAL
WHERE active = 1
GROUP BY day, department, stage, signal;

-- Each refreshable view refreshes once as it is created (into a temporary table it then
-- swaps in); wait for those first refreshes, so a migration ends with the aggregates filled
-- and no temporary table left behind.
SYSTEM WAIT VIEW journey_day_stats_mv;

SYSTEM WAIT VIEW open_promises_mv;

SYSTEM WAIT VIEW resolution_times_mv;

SYSTEM WAIT VIEW signal_day_cells_mv;
