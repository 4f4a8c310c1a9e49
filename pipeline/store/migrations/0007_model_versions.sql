-- Model versions side by side (issue 21): `journeys rescore` stores a whole history scored
-- with another model beside the live one, in the same tables, and the panels and the report
-- read one version (the live one by default). So every journey-level table gets a
-- `model_version` column at the end of its sorting key: ReplacingMergeTree and FINAL fold
-- rows of one (key, model_version) only, and a rescore never replaces a live row of another
-- version. Without it in the key, the rescore's rows and the live rows of a journey would
-- replace each other by `version`, and every figure would mix two models.
--
-- ClickHouse adds a column to a sorting key only in the ALTER that adds the column, and only
-- without a default expression. The default comes in the next ALTER: `score_model`, the
-- version that scored the row, which is what `model_version` means. Rows stored before this
-- migration (the column is absent from their parts) read it through that default, so they
-- are the live version's rows with no rewrite; writers that do not name the column (the
-- dashboards sample, the offline scorer) get the same. What would break: a part written
-- before this migration that holds one journey scored by two models (a live model change
-- whose rows were not merged yet) is sorted by journey_id only, and its two rows fold by
-- version until a merge rewrites the part.
--
-- touchpoints and dead_letters are input, the same for every model: no version there.

ALTER TABLE journeys
    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String),
    MODIFY ORDER BY (journey_id, model_version);

ALTER TABLE journeys MODIFY COLUMN model_version LowCardinality(String) DEFAULT score_model;

ALTER TABLE journey_signals
    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String),
    MODIFY ORDER BY (journey_id, signal_id, model_version);

ALTER TABLE journey_signals
    MODIFY COLUMN model_version LowCardinality(String) DEFAULT score_model;

-- The signal aggregates fed at insert time (0002, 0005): their views select no
-- model_version, so the target's default (score_model, which the views do copy) fills it.
ALTER TABLE signals_by_hour
    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String),
    MODIFY ORDER BY (hour, department, stage, signal, signal_id, model_version);

ALTER TABLE signals_by_hour
    MODIFY COLUMN model_version LowCardinality(String) DEFAULT score_model;

ALTER TABLE signals_by_department
    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String),
    MODIFY ORDER BY (department, signal, hour, stage, signal_id, model_version);

ALTER TABLE signals_by_department
    MODIFY COLUMN model_version LowCardinality(String) DEFAULT score_model;

-- Band entries and recent snapshots carry no score_model: their views are re-created to
-- copy model_version, and both are filled again from the journey rows still stored (with
-- their version); their rows from before this migration (model_version '') are deleted. A
-- band a journey left before its rows were merged away is forgotten: "turned poor in the
-- last hour" may count such a journey as turning poor for the first time.
DROP VIEW IF EXISTS journey_band_entries_mv;

ALTER TABLE journey_band_entries
    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String),
    MODIFY ORDER BY (band, journey_id, model_version);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_band_entries_mv TO journey_band_entries AS
SELECT band, journey_id, model_version, max(customer_id) AS customer_id,
       min(updated_at) AS first_at
FROM journeys
GROUP BY band, journey_id, model_version;

INSERT INTO journey_band_entries
SELECT band, journey_id, max(customer_id) AS customer_id, min(updated_at) AS first_at,
       model_version
FROM journeys
GROUP BY band, journey_id, model_version;

DROP VIEW IF EXISTS recent_journey_snapshots_mv;

ALTER TABLE recent_journey_snapshots
    ADD COLUMN IF NOT EXISTS model_version LowCardinality(String),
    MODIFY ORDER BY (band, at, model_version);

CREATE MATERIALIZED VIEW IF NOT EXISTS recent_journey_snapshots_mv TO recent_journey_snapshots AS
SELECT band, updated_at AS at, journey_id, customer_id, version, status, score, lost_points,
       worst_department, worst_stage, model_version
FROM journeys;

INSERT INTO recent_journey_snapshots
SELECT band, updated_at AS at, journey_id, customer_id, version, status, score, lost_points,
       worst_department, worst_stage, model_version
FROM journeys
WHERE updated_at >= now() - INTERVAL 1 DAY;

ALTER TABLE journey_band_entries DELETE WHERE model_version = '';

ALTER TABLE recent_journey_snapshots DELETE WHERE model_version = '';

-- The refreshed aggregates (0003-0005) are recomputed whole at every refresh: re-created
-- with the version first in their sorting key (a panel reads one version's range) and
-- grouped by it.
DROP VIEW IF EXISTS journey_day_stats_mv;

DROP TABLE IF EXISTS journey_day_stats;

CREATE TABLE IF NOT EXISTS journey_day_stats (
    model_version LowCardinality(String),
    start_day Date,
    band LowCardinality(String),
    score_decile UInt8,
    journeys UInt64,
    score_sum Float64,
    lost_points Float64,
    lost_points_beyond_front_desk Float64
) ENGINE = MergeTree
ORDER BY (model_version, start_day, band, score_decile);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_day_stats_mv
REFRESH EVERY 1 MINUTE TO journey_day_stats AS
SELECT
    model_version,
    toDate(started_at) AS start_day,
    band,
    toUInt8(least(floor(score / 10) * 10, 90)) AS score_decile,
    count() AS journeys,
    sum(score) AS score_sum,
    sum(lost_points) AS lost_points,
    sum(lost_points_beyond_front_desk) AS lost_points_beyond_front_desk
FROM journeys FINAL
WHERE status != 'retired'
GROUP BY model_version, start_day, band, score_decile;

DROP VIEW IF EXISTS signal_day_cells_mv;

DROP TABLE IF EXISTS signal_day_cells;

CREATE TABLE IF NOT EXISTS signal_day_cells (
    model_version LowCardinality(String),
    day Date,
    department LowCardinality(String),
    stage LowCardinality(String),
    signal LowCardinality(String),
    signals UInt64,
    points Float64,
    points_lost Float64,
    losing_journeys AggregateFunction(uniq, String)
) ENGINE = MergeTree
ORDER BY (model_version, day, department, stage, signal);

CREATE MATERIALIZED VIEW IF NOT EXISTS signal_day_cells_mv
REFRESH EVERY 5 MINUTE TO signal_day_cells AS
SELECT
    model_version,
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
GROUP BY model_version, day, department, stage, signal;

DROP VIEW IF EXISTS journey_cell_days_mv;

DROP TABLE IF EXISTS journey_cell_days;

CREATE TABLE IF NOT EXISTS journey_cell_days (
    model_version LowCardinality(String),
    day Date,
    department LowCardinality(String),
    stage LowCardinality(String),
    previous_day Date,
    journeys UInt64,
    points_lost Float64
) ENGINE = MergeTree
ORDER BY (model_version, day, department, stage, previous_day);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_cell_days_mv
REFRESH EVERY 5 MINUTE TO journey_cell_days AS
SELECT
    model_version,
    visit.1 AS day,
    department,
    stage,
    visit.2 AS previous_day,
    count() AS journeys,
    sum(visit.3) AS points_lost
FROM (
    SELECT model_version, department, stage, journey_id,
           arraySort(groupArray((day, lost))) AS days
    FROM (
        SELECT model_version, department, stage, journey_id, toDate(effective_at) AS day,
               sum(-impact) AS lost
        FROM signals_by_hour FINAL
        WHERE active = 1 AND impact < 0
        GROUP BY model_version, department, stage, journey_id, day
    )
    GROUP BY model_version, department, stage, journey_id
)
ARRAY JOIN arrayMap(i -> (days[i].1, if(i = 1, toDate(0), days[i - 1].1), days[i].2),
                    arrayEnumerate(days)) AS visit
GROUP BY model_version, day, department, stage, previous_day;

-- The model versions the tables hold, and which one is live: the worker records its model
-- as 'live' when it starts, `journeys rescore` records the model it stores as 'rescore'
-- (with the model file, so a version is never reused for another model). The dashboards'
-- model variable lists the most recent live version first, and Grafana selects it.
CREATE TABLE IF NOT EXISTS score_models (
    model_version String,
    role LowCardinality(String),
    model_sha256 String,
    model_toml String,
    registered_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(registered_at)
ORDER BY (model_version, role);

-- Where a rescore stands: one row per finished shard of a run (a run is one model version
-- over one event-time window, scored as of one moment). A rerun after a crash reads the
-- run's moment back and skips the shards it finished; the shards it redoes write the same
-- rows again, which the tables above fold (same key, same version).
CREATE TABLE IF NOT EXISTS rescore_progress (
    model_version String,
    time_window String,
    as_of DateTime64(6, 'UTC'),
    shards UInt16,
    shard Int32,
    journeys UInt64,
    events UInt64,
    finished_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(finished_at)
ORDER BY (model_version, time_window, shard);

SYSTEM WAIT VIEW journey_day_stats_mv;

SYSTEM WAIT VIEW signal_day_cells_mv;

SYSTEM WAIT VIEW journey_cell_days_mv;
