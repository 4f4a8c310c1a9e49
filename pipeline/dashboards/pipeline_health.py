"""Pipeline health and data quality: throughput, lag, latency, sink retries, rejections."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from pipeline.dashboards.common import new_dashboard, table_panel, timeseries_panel

UID = "journeys-pipeline"

_STEP = "toIntervalSecond(greatest($__interval_s, 60))"

THROUGHPUT = f"""
SELECT toStartOfInterval(minute, {_STEP}) AS time,
       uniqMerge(rows) / greatest($__interval_s, 60) AS stored_per_second
FROM touchpoints_ingested_per_minute
WHERE minute >= toStartOfMinute($__fromTime) AND minute <= $__toTime
GROUP BY time
ORDER BY time
"""

LATENCY = f"""
SELECT time, q[1] AS p50, q[2] AS p95, q[3] AS p99, worst AS max
FROM (
    SELECT toStartOfInterval(minute, {_STEP}) AS time,
           quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_seconds) AS q,
           max(latency_max_seconds) AS worst
    FROM touchpoints_ingested_per_minute
    WHERE minute >= toStartOfMinute($__fromTime) AND minute <= $__toTime
    GROUP BY time
)
ORDER BY time
"""

# The last lag sample per partition in each interval, summed per topic.
CONSUMER_LAG = """
SELECT bucket AS time, topic, sum(lag) AS consumer_lag
FROM (
    SELECT $__timeInterval(time) AS bucket, topic, partition, argMax(value, time) AS lag
    FROM pipeline_metrics FINAL
    WHERE name = 'consumer_lag' AND $__timeFilter_ms(time)
    GROUP BY bucket, topic, partition
)
GROUP BY time, topic
ORDER BY time, topic
"""

SINK_RETRIES = """
SELECT bucket AS time, worker, sink_retries
FROM (
    SELECT $__timeInterval(time) AS bucket, worker, sum(value) AS sink_retries
    FROM pipeline_metrics FINAL
    WHERE name = 'sink_retries' AND $__timeFilter_ms(time)
    GROUP BY bucket, worker
)
ORDER BY time, worker
"""

REJECTIONS_BY_CODE = """
SELECT if(department = '', '(unknown)', department) AS sender, reason_code,
       uniqMerge(rejections) AS rejected_events, max(example_reason) AS example_reason,
       max(example_raw) AS example_message
FROM rejections_per_hour
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
GROUP BY sender, reason_code
ORDER BY rejected_events DESC, sender, reason_code
"""

# accepted_per_hour (migration 0005): touchpoints_per_hour without the stage, in granules
# of 256 rows, so six hours do not deserialize a month's states.
QUALITY_BY_DEPARTMENT = """
SELECT sender, accepted, rejected,
       round(100 * rejected / greatest(accepted + rejected, 1), 2) AS rejected_pct
FROM (
    SELECT department AS sender, uniqMerge(events) AS accepted, toUInt64(0) AS rejected
    FROM accepted_per_hour
    WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
    GROUP BY sender
    UNION ALL
    SELECT if(department = '', '(unknown)', department) AS sender, toUInt64(0) AS accepted,
           uniqMerge(rejections) AS rejected
    FROM rejections_per_hour
    WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
    GROUP BY sender
)
ORDER BY rejected_pct DESC, sender
"""


def build() -> dash.Dashboard:
    return (
        new_dashboard(
            UID,
            "Journeys: pipeline health and data quality",
            "Platform team: is the pipeline keeping up, and what do departments send wrong.",
            "now-6h",
        )
        .refresh("30s")
        .with_panel(
            timeseries_panel(
                "Throughput",
                "Touchpoints stored per second (by ingestion time; replays included).",
                THROUGHPUT,
                unit="reqps",
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Consumer lag",
                "Messages not yet consumed, per topic (sum over partitions of the latest sample "
                "the workers wrote to pipeline_metrics).",
                CONSUMER_LAG,
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Event-to-stored latency",
                "Seconds from occurred_at to stored in ClickHouse: p50, p95, p99 and max.",
                LATENCY,
                unit="s",
                width=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Sink retries",
                "ClickHouse writes the sink had to retry, per worker.",
                SINK_RETRIES,
                width=8,
            )
        )
        .with_panel(
            table_panel(
                "Data quality by department",
                "Accepted and rejected events per sending department, and the rejected share.",
                QUALITY_BY_DEPARTMENT,
                width=16,
            )
        )
        .with_panel(
            table_panel(
                "Rejections by department and code",
                "Rejected events per department and reason code, with an example reason and "
                "the start of an example message.",
                REJECTIONS_BY_CODE,
                width=24,
                height=10,
            )
        )
    )
