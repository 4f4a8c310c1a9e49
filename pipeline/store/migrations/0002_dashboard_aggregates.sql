-- Aggregates for the Grafana dashboards (docs/dashboards.md), so that no panel scans raw
-- history. Each one stays correct when the pipeline replays or re-sends rows: a replay from
-- Kafka re-inserts the same rows in other batches (insert_deduplication_token does not catch
-- that), and each materialized view below fires again for them. So nothing here is a plain
-- count() or sum() over inserted rows; every table is one of:
--   * AggregatingMergeTree with uniq states over the source row id (a duplicate id adds
--     nothing; `uniq` is exact below 65,536 distinct ids per cell),
--   * AggregatingMergeTree with min/max simple aggregates (idempotent),
--   * ReplacingMergeTree keyed by the source row id, ordered time-first so a panel reads
--     a primary-key range with FINAL and aggregates at query time.
-- The aggregate tables carry no deduplication window on purpose: they are idempotent by
-- construction, and a block-level dedup on them would drop a legitimately equal block.

-- Touchpoints per department x minute of event time (operations: live volume).
CREATE TABLE IF NOT EXISTS touchpoints_per_minute (
    minute DateTime('UTC'),
    department LowCardinality(String),
    events AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, department)
TTL minute + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS touchpoints_per_minute_mv TO touchpoints_per_minute AS
SELECT
    toStartOfMinute(occurred_at) AS minute,
    department,
    uniqState(event_id) AS events
FROM touchpoints
GROUP BY minute, department;

-- Touchpoints and journeys per department x stage x hour of event time (leadership, department).
CREATE TABLE IF NOT EXISTS touchpoints_per_hour (
    hour DateTime('UTC'),
    department LowCardinality(String),
    stage LowCardinality(String),
    events AggregateFunction(uniq, String),
    journeys AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, department, stage);

CREATE MATERIALIZED VIEW IF NOT EXISTS touchpoints_per_hour_mv TO touchpoints_per_hour AS
SELECT
    toStartOfHour(occurred_at) AS hour,
    department,
    stage,
    uniqState(event_id) AS events,
    uniqState(journey_id) AS journeys
FROM touchpoints
GROUP BY hour, department, stage;

-- What the pipeline stored per minute of *ingestion* time: throughput and event-to-stored
-- latency. Rows are counted once per event_id within the minute, so a re-sent batch adds
-- nothing; a replay stores the events again at a later _ingested_at and counts there on
-- purpose (this measures the pipeline's work), showing as a burst of high latency.
CREATE TABLE IF NOT EXISTS touchpoints_ingested_per_minute (
    minute DateTime('UTC'),
    department LowCardinality(String),
    rows AggregateFunction(uniq, String),
    latency_seconds AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float64),
    latency_max_seconds SimpleAggregateFunction(max, Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, department)
TTL minute + INTERVAL 35 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS touchpoints_ingested_per_minute_mv
TO touchpoints_ingested_per_minute AS
SELECT
    toStartOfMinute(_ingested_at) AS minute,
    department,
    uniqState(event_id) AS rows,
    quantilesTDigestState(0.5, 0.95, 0.99)(
        greatest(dateDiff('millisecond', occurred_at, _ingested_at), 0) / 1000.0
    ) AS latency_seconds,
    max(greatest(dateDiff('millisecond', occurred_at, _ingested_at), 0) / 1000.0)
        AS latency_max_seconds
FROM touchpoints
GROUP BY minute, department;

-- Rejected messages per department x reason code x hour, counted once per source position
-- (topic, partition, offset): the same message rejected again on replay adds nothing to a
-- window that holds both, and one example reason and raw message is kept per cell.
CREATE TABLE IF NOT EXISTS rejections_per_hour (
    hour DateTime('UTC'),
    department LowCardinality(String),
    reason_code LowCardinality(String),
    rejections AggregateFunction(uniq, String, UInt32, UInt64),
    example_reason SimpleAggregateFunction(max, String),
    example_raw SimpleAggregateFunction(max, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, department, reason_code);

CREATE MATERIALIZED VIEW IF NOT EXISTS rejections_per_hour_mv TO rejections_per_hour AS
SELECT
    toStartOfHour(received_at) AS hour,
    department,
    reason_code,
    uniqState(source_topic, source_partition, source_offset) AS rejections,
    max(reason) AS example_reason,
    max(substring(raw, 1, 500)) AS example_raw
FROM dead_letters
GROUP BY hour, department, reason_code;

-- Signals ordered by hour of effect, department and stage: the heatmap, lost points, promise
-- outcomes and reasons all read an hour range of this table with FINAL. Keyed by signal_id
-- with the signal's version, so a replayed signal collapses and a retraction (`active = 0`
-- with a higher version) wins; summing journey_signals by time would scan every month.
CREATE TABLE IF NOT EXISTS signals_by_hour (
    hour DateTime('UTC'),
    department LowCardinality(String),
    stage LowCardinality(String),
    signal LowCardinality(String),
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
ORDER BY (hour, department, stage, signal, signal_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS signals_by_hour_mv TO signals_by_hour AS
SELECT
    toStartOfHour(effective_at) AS hour,
    department,
    stage,
    signal,
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

-- Journeys by the day they started, latest version wins: score trend, distribution,
-- word-of-mouth balance and worst journeys read a day range with FINAL (journeys itself is
-- keyed by journey_id only, so a time filter there reads the whole table).
CREATE TABLE IF NOT EXISTS journeys_by_start (
    start_day Date,
    journey_id String,
    customer_id String,
    started_at DateTime64(3, 'UTC'),
    last_event_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    status LowCardinality(String),
    score Float64,
    band LowCardinality(String),
    touchpoint_count UInt32,
    lost_points Float64,
    lost_points_beyond_front_desk Float64,
    worst_department LowCardinality(String),
    worst_stage LowCardinality(String),
    score_model LowCardinality(String),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(start_day)
ORDER BY (start_day, journey_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS journeys_by_start_mv TO journeys_by_start AS
SELECT
    toDate(started_at) AS start_day,
    journey_id,
    customer_id,
    started_at,
    last_event_at,
    updated_at,
    status,
    score,
    band,
    touchpoint_count,
    lost_points,
    lost_points_beyond_front_desk,
    worst_department,
    worst_stage,
    score_model,
    version
FROM journeys;

-- When each journey first reached each band (min is idempotent under replays): "journeys
-- that turned poor in the last hour" reads the `poor` key range only.
CREATE TABLE IF NOT EXISTS journey_band_entries (
    band LowCardinality(String),
    journey_id String,
    customer_id SimpleAggregateFunction(max, String),
    first_at SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (band, journey_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_band_entries_mv TO journey_band_entries AS
SELECT band, journey_id, max(customer_id) AS customer_id, min(updated_at) AS first_at
FROM journeys
GROUP BY band, journey_id;

-- One row per promise (customer, promise_id) folded from promise_made and promise_kept
-- touchpoints with min/max, so the order and repetition of those events do not matter.
-- `department` and `due_at` come from promise_made only (kept rows contribute '' / NULL).
CREATE TABLE IF NOT EXISTS promises (
    customer_id String,
    promise_id String,
    department SimpleAggregateFunction(max, String),
    stage SimpleAggregateFunction(max, String),
    journey_id SimpleAggregateFunction(max, String),
    made_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    due_at SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC'))),
    kept_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC')))
) ENGINE = AggregatingMergeTree
ORDER BY (customer_id, promise_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS promises_mv TO promises AS
SELECT
    customer_id,
    JSONExtractString(attributes, 'promise_id') AS promise_id,
    max(if(type = 'promise_made', department, '')) AS department,
    max(if(type = 'promise_made', stage, '')) AS stage,
    max(journey_id) AS journey_id,
    minIf(toNullable(occurred_at), type = 'promise_made') AS made_at,
    maxIf(
        parseDateTime64BestEffortOrNull(JSONExtractString(attributes, 'due_at'), 3, 'UTC'),
        type = 'promise_made'
    ) AS due_at,
    minIf(toNullable(occurred_at), type = 'promise_kept') AS kept_at
FROM touchpoints
WHERE type IN ('promise_made', 'promise_kept')
  AND JSONExtractString(attributes, 'promise_id') != ''
GROUP BY customer_id, promise_id;

-- One row per case or billing dispute, folded like promises: opened by the department that
-- opened it, resolved at the last resolution (a reopened case resolves again).
CREATE TABLE IF NOT EXISTS resolutions (
    customer_id String,
    kind LowCardinality(String),
    item_id String,
    department SimpleAggregateFunction(max, String),
    stage SimpleAggregateFunction(max, String),
    opened_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    resolved_at SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC')))
) ENGINE = AggregatingMergeTree
ORDER BY (customer_id, kind, item_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS resolutions_mv TO resolutions AS
SELECT
    customer_id,
    if(type LIKE 'billing_dispute_%', 'dispute', 'case') AS kind,
    if(kind = 'dispute', JSONExtractString(attributes, 'dispute_id'),
        JSONExtractString(attributes, 'case_id')) AS item_id,
    max(if(type IN ('case_opened', 'billing_dispute_opened'), department, '')) AS department,
    max(if(type IN ('case_opened', 'billing_dispute_opened'), stage, '')) AS stage,
    minIf(toNullable(occurred_at), type IN ('case_opened', 'billing_dispute_opened'))
        AS opened_at,
    maxIf(toNullable(occurred_at), type IN ('case_resolved', 'billing_dispute_resolved'))
        AS resolved_at
FROM touchpoints
WHERE type IN ('case_opened', 'case_resolved', 'billing_dispute_opened',
               'billing_dispute_resolved')
GROUP BY customer_id, kind, item_id
HAVING item_id != '';

-- Pipeline metrics that no other table holds: consumer lag, sink retries, sink batch time.
-- Written by the worker (pipeline.dashboards.metrics.metric_rows builds the rows); keyed by
-- (name, time, worker, topic, partition) so a re-sent sample collapses.
CREATE TABLE IF NOT EXISTS pipeline_metrics (
    time DateTime64(3, 'UTC'),
    worker LowCardinality(String),
    name LowCardinality(String),
    topic LowCardinality(String) DEFAULT '',
    partition Int32 DEFAULT -1,
    value Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (name, time, worker, topic, partition)
TTL toDateTime(time) + INTERVAL 30 DAY;
