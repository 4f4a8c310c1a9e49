-- Every alert the worker raised, and whether the department acted on it in time (issue 20:
-- "did the loop close?"). The worker writes one row per alert in the checkpoint that
-- publishes it to the alerts topic, so the table holds exactly the alerts the departments
-- were sent, whether or not they have a webhook. raised_at and act_by are event time
-- (pipeline/stream/rows.py alert_message): a replay writes the same row, and a re-raised
-- alert (the worker's memory of alerts sent does not survive a restart) collapses on its
-- alert_id. Not partitioned: alerts are few (a handful per hundred journeys).
CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    kind LowCardinality(String),
    department LowCardinality(String),
    journey_id String,
    customer_id String,
    raised_at DateTime64(3, 'UTC'),
    act_by DateTime64(3, 'UTC'),
    alert String,
    _topic LowCardinality(String),
    _partition UInt32,
    _offset UInt64,
    _ingested_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(_ingested_at)
ORDER BY (department, alert_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per alert with its outcome. An action is a touchpoint of the alert's journey, by
-- any department, at or after the alert was raised: the company telling the customer
-- (proactive_update), a promise kept, feedback answered, or a resolution (case_resolved,
-- billing_dispute_resolved, a contact with resolved: true). outcome: in_time (the first
-- action by act_by), late (after it), not_acted (none, and act_by has passed), open (none
-- yet, act_by still ahead). seconds_to_act: from raised_at to the first action.
-- Read at query time, not kept by a materialized view: an action usually arrives after
-- its alert, and a view fed by inserts into one table would not see the other's later rows.
CREATE VIEW IF NOT EXISTS alert_outcomes AS
SELECT
    a.alert_id AS alert_id,
    a.kind AS kind,
    a.department AS department,
    a.journey_id AS journey_id,
    a.customer_id AS customer_id,
    a.raised_at AS raised_at,
    a.act_by AS act_by,
    arrayFilter(t -> t >= a.raised_at, acts.times) AS after,
    if(empty(after), NULL, arrayMin(after)) AS acted_at,
    multiIf(
        empty(after) AND now64(3) <= a.act_by, 'open',
        empty(after), 'not_acted',
        arrayMin(after) <= a.act_by, 'in_time',
        'late'
    ) AS outcome,
    if(empty(after), NULL, dateDiff('millisecond', a.raised_at, arrayMin(after)) / 1000)
        AS seconds_to_act
FROM alerts AS a FINAL
LEFT JOIN (
    SELECT journey_id, groupArray(occurred_at) AS times
    FROM touchpoints FINAL
    -- Only journeys that had an alert (a sorting-key column, so filtered before FINAL
    -- merges). By journey alone: a journey's events may name other customer ids than the
    -- one its alerts carry (its first event's).
    WHERE journey_id IN (SELECT journey_id FROM alerts)
      AND (type IN ('proactive_update', 'promise_kept', 'feedback_answered',
                    'case_resolved', 'billing_dispute_resolved')
           OR (type = 'contact' AND JSONExtractBool(attributes, 'resolved')))
    GROUP BY journey_id
) AS acts ON acts.journey_id = a.journey_id;
