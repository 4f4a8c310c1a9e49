-- The public schema (PRODUCT.md, "ClickHouse tables"): analysts and Grafana query these
-- tables by name, so columns may be added but never renamed. Every row keeps its Kafka
-- provenance (_topic, _partition, _offset, _ingested_at) so a replay can be traced and
-- de-duplicated. All times are DateTime64(3, 'UTC').
--
-- Single-node MergeTree tables ignore insert_deduplication_token unless
-- non_replicated_deduplication_window is set: without it a retried sink batch would be
-- written twice.

-- One row per accepted touchpoint. Keyed by event_id within the journey, so a re-sent
-- event collapses on merge; dashboards read it with FINAL or through aggregates.
CREATE TABLE IF NOT EXISTS touchpoints (
    event_id String,
    occurred_at DateTime64(3, 'UTC'),
    customer_id String,
    journey_id String,
    department LowCardinality(String),
    stage LowCardinality(String),
    channel LowCardinality(String),
    type LowCardinality(String),
    attributes String,
    schema_version UInt16 DEFAULT 1,
    _topic LowCardinality(String),
    _partition UInt32,
    _offset UInt64,
    _ingested_at DateTime64(3, 'UTC'),
    INDEX occurred_at_minmax occurred_at TYPE minmax GRANULARITY 4
) ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (customer_id, journey_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per rejected message, raw bytes as received. Keyed by its source position, so a
-- replay of the same offsets collapses on merge.
CREATE TABLE IF NOT EXISTS dead_letters (
    received_at DateTime64(3, 'UTC'),
    reason_code LowCardinality(String),
    reason String,
    department LowCardinality(String),
    raw String,
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    _topic LowCardinality(String),
    _partition UInt32,
    _offset UInt64,
    _ingested_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (source_topic, source_partition, source_offset)
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per journey; the highest `version` wins (read with FINAL or argMax). A journey
-- that a late event merged into another gets a last row with `is_deleted = 1` (status
-- 'retired'), which FINAL drops; argMax readers must filter on it.
CREATE TABLE IF NOT EXISTS journeys (
    journey_id String,
    customer_id String,
    started_at DateTime64(3, 'UTC'),
    last_event_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    status LowCardinality(String),
    score Float64,
    operational_score Float64,
    survey_score Nullable(Float64),
    band LowCardinality(String),
    touchpoint_count UInt32,
    lost_points Float64,
    gained_points Float64,
    lost_points_beyond_front_desk Float64,
    worst_department LowCardinality(String),
    worst_stage LowCardinality(String),
    score_model LowCardinality(String),
    version UInt64,
    is_deleted UInt8 DEFAULT 0,
    _topic LowCardinality(String),
    _partition UInt32,
    _offset UInt64,
    _ingested_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY journey_id
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per signal. signal_id is derived from the journey, the signal kind and its
-- evidence, so a replay writes the same id; `active = 0` with a higher version retracts a
-- signal the journey's event set no longer supports.
CREATE TABLE IF NOT EXISTS journey_signals (
    signal_id String,
    journey_id String,
    customer_id String,
    signal LowCardinality(String),
    department LowCardinality(String),
    stage LowCardinality(String),
    impact Float64,
    effective_at DateTime64(3, 'UTC'),
    evidence_event_ids Array(String),
    reason String,
    score_model LowCardinality(String),
    active UInt8 DEFAULT 1,
    version UInt64,
    _topic LowCardinality(String),
    _partition UInt32,
    _offset UInt64,
    _ingested_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(effective_at)
ORDER BY (journey_id, signal_id)
SETTINGS non_replicated_deduplication_window = 1000;
