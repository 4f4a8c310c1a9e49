-- Aggregates that an insert-time view cannot keep: figures over each journey's *latest*
-- version, and over promises and cases folded from several touchpoints. Measured at ~1M
-- touchpoints, reading those at query time cost 50-200 ms per panel and grows with
-- history. Refreshable materialized views (ClickHouse 24.10+; chdb has them) recompute
-- them from the replay-safe tables on a schedule and swap the result in atomically, so the
-- panels read a few thousand rows. The price is freshness: up to one refresh interval.

-- Journeys by start day x band x score decile: score trend, distribution, word-of-mouth
-- balance and the share lost beyond the front desk. From journeys FINAL (latest version per
-- journey), so a journey whose start moved earlier with a late event counts once, on its
-- true day; retired ids (merged into another journey) are not journeys.
CREATE TABLE IF NOT EXISTS journey_day_stats (
    start_day Date,
    band LowCardinality(String),
    score_decile UInt8,
    journeys UInt64,
    score_sum Float64,
    lost_points Float64,
    lost_points_beyond_front_desk Float64
) ENGINE = MergeTree
ORDER BY (start_day, band, score_decile);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_day_stats_mv
REFRESH EVERY 1 MINUTE TO journey_day_stats AS
SELECT
    toDate(started_at) AS start_day,
    band,
    toUInt8(least(floor(score / 10) * 10, 90)) AS score_decile,
    count() AS journeys,
    sum(score) AS score_sum,
    sum(lost_points) AS lost_points,
    sum(lost_points_beyond_front_desk) AS lost_points_beyond_front_desk
FROM journeys FINAL
WHERE status != 'retired'
GROUP BY start_day, band, score_decile;

-- Promises made and not kept, due from two days ago on: "promises due in the next hours".
CREATE TABLE IF NOT EXISTS open_promises (
    due_at DateTime64(3, 'UTC'),
    department LowCardinality(String),
    stage LowCardinality(String),
    customer_id String,
    journey_id String,
    promise_id String
) ENGINE = MergeTree
ORDER BY (due_at, department);

CREATE MATERIALIZED VIEW IF NOT EXISTS open_promises_mv
REFRESH EVERY 1 MINUTE TO open_promises AS
SELECT
    assumeNotNull(due) AS due_at,
    department,
    stage,
    customer_id,
    journey_id,
    promise_id
FROM (
    SELECT
        customer_id,
        promise_id,
        toString(max(department)) AS department,
        toString(max(stage)) AS stage,
        toString(max(journey_id)) AS journey_id,
        max(due_at) AS due,
        min(kept_at) AS kept
    FROM promises
    GROUP BY customer_id, promise_id
)
WHERE kept IS NULL AND due IS NOT NULL AND department != ''
  AND due >= now() - INTERVAL 2 DAY;

-- Cases and billing disputes folded to one row each, keyed by the opening department and
-- the opening time: "time to resolution" reads one department's range.
CREATE TABLE IF NOT EXISTS resolution_times (
    department LowCardinality(String),
    opened_at DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    customer_id String,
    item_id String,
    resolved_at Nullable(DateTime64(3, 'UTC')),
    hours Nullable(Float64)
) ENGINE = MergeTree
ORDER BY (department, opened_at);

CREATE MATERIALIZED VIEW IF NOT EXISTS resolution_times_mv
REFRESH EVERY 1 MINUTE TO resolution_times AS
SELECT
    department,
    assumeNotNull(opened) AS opened_at,
    kind,
    customer_id,
    item_id,
    resolved AS resolved_at,
    if(resolved IS NULL, NULL, greatest(dateDiff('second', opened, resolved), 0) / 3600) AS hours
FROM (
    SELECT
        customer_id,
        kind,
        item_id,
        toString(max(department)) AS department,
        min(opened_at) AS opened,
        max(resolved_at) AS resolved
    FROM resolutions
    GROUP BY customer_id, kind, item_id
)
WHERE opened IS NOT NULL AND department != '';

-- journey_day_stats replaces 0002's journeys_by_start, which had to re-check every row
-- against journeys to stay exact; stop writing it.
DROP VIEW IF EXISTS journeys_by_start_mv;

DROP TABLE IF EXISTS journeys_by_start;
