-- Issue 8: every panel within 100 ms at 10 million touchpoints. Measured there, four shapes
-- of query still grew with the history in the range (benchmarks/notes.md):
--   * one department's signals (department drill-down, broken-promise panel and alert) read
--     every department's signals of the range from signals_by_hour, which is ordered
--     hour-first;
--   * "journeys affected" merged a `uniq` state per day x department x stage x signal, a
--     month being every (journey, cell) pair again (~2M hashes);
--   * "journeys active in the range" merged a `uniq` state per hour x department x stage;
--   * "data quality" deserialized whole granules of hourly states it then filtered out;
--   * "turned poor in the last hour" grouped every journey that was ever poor, then
--     scanned journeys for the latest state of those that turned poor.
-- Each gets a table ordered or folded for that question. Like 0002-0004, all of them stay
-- correct when rows are replayed or re-sent.

-- One department's signals, kind by kind, over an hour range: the same rows and the same
-- replacing key as signals_by_hour (a signal keeps its department, stage and hour), ordered
-- department, signal, hour first so a department's week or a kind's day is a key range.
-- Small granules: a kind's day per department is a few thousand rows, and FINAL merges
-- whole granules.
CREATE TABLE IF NOT EXISTS signals_by_department (
    department LowCardinality(String),
    signal LowCardinality(String),
    hour DateTime('UTC'),
    stage LowCardinality(String),
    signal_id String,
    journey_id String,
    customer_id String,
    impact Float64,
    effective_at DateTime64(3, 'UTC'),
    reason String,
    score_model LowCardinality(String),
    active UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (department, signal, hour, stage, signal_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS signals_by_department_mv TO signals_by_department AS
SELECT
    department,
    signal,
    toStartOfHour(effective_at) AS hour,
    stage,
    signal_id,
    journey_id,
    customer_id,
    impact,
    effective_at,
    reason,
    score_model,
    active,
    version
FROM journey_signals;

-- The signals stored before this migration (a row also written by the view meanwhile
-- collapses with its copy: same key, same version).
INSERT INTO signals_by_department
SELECT department, signal, hour, stage, signal_id, journey_id, customer_id, impact,
       effective_at, reason, score_model, active, version
FROM signals_by_hour;

-- The heatmap's cells with an exact count of the journeys that lost points there, for any
-- range of whole days, without merging a journey set per day: each (journey, cell) pair is
-- one row per day it lost points, with the previous such day (1970-01-01 for its first).
-- The journeys of a cell in [d1, d2] are then the rows with d1 <= day <= d2 and
-- previous_day < d1: exactly one per journey, its first losing day in the range. Refreshed
-- every five minutes from signals_by_hour FINAL (replays and retractions resolved), like
-- signal_day_cells, whose lost points it repeats so that both heatmap figures come from the
-- same refresh.
CREATE TABLE IF NOT EXISTS journey_cell_days (
    day Date,
    department LowCardinality(String),
    stage LowCardinality(String),
    previous_day Date,
    journeys UInt64,
    points_lost Float64
) ENGINE = MergeTree
ORDER BY (day, department, stage, previous_day);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_cell_days_mv
REFRESH EVERY 5 MINUTE TO journey_cell_days AS
SELECT
    visit.1 AS day,
    department,
    stage,
    visit.2 AS previous_day,
    count() AS journeys,
    sum(visit.3) AS points_lost
FROM (
    SELECT department, stage, journey_id, arraySort(groupArray((day, lost))) AS days
    FROM (
        SELECT department, stage, journey_id, toDate(effective_at) AS day, sum(-impact) AS lost
        FROM signals_by_hour FINAL
        WHERE active = 1 AND impact < 0
        GROUP BY department, stage, journey_id, day
    )
    GROUP BY department, stage, journey_id
)
ARRAY JOIN arrayMap(i -> (days[i].1, if(i = 1, toDate(0), days[i - 1].1), days[i].2),
                    arrayEnumerate(days)) AS visit
GROUP BY day, department, stage, previous_day;

-- Journeys with a touchpoint in a range of whole days: `uniq` states of journey_id over
-- aligned blocks of 1, 2, 4, ..., 64 days (a block of n days starts on a day number
-- divisible by n). A range is covered by its largest blocks (each block inside the range
-- whose parent block is not), so a month merges about five states instead of one per
-- hour x department x stage. `uniq` of the source ids: a replay adds nothing. Each insert
-- writes its own states (one part per insert, which merges rarely fold completely), so a
-- refreshable view folds them to one state per block every five minutes, as fresh as the
-- heatmap's cells.
CREATE TABLE IF NOT EXISTS journeys_active_block_parts (
    span_days UInt8,
    first_day Date,
    journeys AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree
ORDER BY (span_days, first_day);

CREATE MATERIALIZED VIEW IF NOT EXISTS journeys_active_block_parts_mv
TO journeys_active_block_parts AS
SELECT
    span_days,
    toDate(occurred_at) - toUInt16(toDate(occurred_at)) % span_days AS first_day,
    uniqState(journey_id) AS journeys
FROM touchpoints
ARRAY JOIN [1, 2, 4, 8, 16, 32, 64] AS span_days
GROUP BY span_days, first_day;

-- History from touchpoints_per_hour's journey states (the same ids, so the same sets).
INSERT INTO journeys_active_block_parts
SELECT
    span_days,
    toDate(hour) - toUInt16(toDate(hour)) % span_days AS first_day,
    uniqMergeState(journeys) AS journeys
FROM touchpoints_per_hour
ARRAY JOIN [1, 2, 4, 8, 16, 32, 64] AS span_days
GROUP BY span_days, first_day;

CREATE TABLE IF NOT EXISTS journeys_active_blocks (
    span_days UInt8,
    first_day Date,
    journeys AggregateFunction(uniq, String)
) ENGINE = MergeTree
ORDER BY (span_days, first_day);

CREATE MATERIALIZED VIEW IF NOT EXISTS journeys_active_blocks_mv
REFRESH EVERY 5 MINUTE TO journeys_active_blocks AS
SELECT span_days, first_day, uniqMergeState(journeys) AS journeys
FROM journeys_active_block_parts
GROUP BY span_days, first_day;

-- Accepted touchpoints per department x hour, in small granules: "data quality" over six
-- hours read whole 8,192-row granules of touchpoints_per_hour, and every state in a granule
-- is deserialized before the hour filter drops it (~6M hashes for 30 wanted rows). The
-- same `uniq` of event_id, without the stage.
CREATE TABLE IF NOT EXISTS accepted_per_hour (
    hour DateTime('UTC'),
    department LowCardinality(String),
    events AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, department)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS accepted_per_hour_mv TO accepted_per_hour AS
SELECT toStartOfHour(occurred_at) AS hour, department, uniqState(event_id) AS events
FROM touchpoints
GROUP BY hour, department;

INSERT INTO accepted_per_hour
SELECT hour, department, uniqMergeState(events) AS events
FROM touchpoints_per_hour
GROUP BY hour, department;

-- Journey snapshots of the last day by band and time, with the figures the "turned poor"
-- table shows: the journeys that may have turned poor in the last hour are the ones with a
-- poor snapshot in that hour (journey_band_entries then says whether it was their first),
-- and their latest state is among their recent snapshots, not a scan of journeys.
CREATE TABLE IF NOT EXISTS recent_journey_snapshots (
    band LowCardinality(String),
    at DateTime64(3, 'UTC'),
    journey_id String,
    customer_id String,
    version UInt64,
    status LowCardinality(String),
    score Float64,
    lost_points Float64,
    worst_department LowCardinality(String),
    worst_stage LowCardinality(String)
) ENGINE = MergeTree
ORDER BY (band, at)
TTL toDateTime(at) + INTERVAL 1 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS recent_journey_snapshots_mv TO recent_journey_snapshots AS
SELECT band, updated_at AS at, journey_id, customer_id, version, status, score, lost_points,
       worst_department, worst_stage
FROM journeys;

INSERT INTO recent_journey_snapshots
SELECT band, updated_at AS at, journey_id, customer_id, version, status, score, lost_points,
       worst_department, worst_stage
FROM journeys
WHERE updated_at >= now() - INTERVAL 1 DAY;

SYSTEM WAIT VIEW journey_cell_days_mv;

SYSTEM WAIT VIEW journeys_active_blocks_mv;
