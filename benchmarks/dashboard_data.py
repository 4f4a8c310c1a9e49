"""A production-sized data set made inside ClickHouse, through the tables the pipeline writes.

10 million touchpoints over 1 million journeys in Python would take longer than the whole
suite; `INSERT ... SELECT FROM numbers()` makes them in the engine. Rows go into the public
tables (touchpoints, journeys, journey_signals, dead_letters, pipeline_metrics), so every
materialized view of the dashboard migrations fills its aggregate exactly as it does for the
worker's inserts, and panels read what they would read in production.

Shapes follow the simulated company: about ten touchpoints per journey spread over up to
five days, journeys starting over the last `days` days, 2.5 journeys per customer, three
signals per journey, rejected messages at 1% of traffic, every journey stored in two
versions (an older snapshot and the latest) as the worker's re-scoring leaves them before
merges. `cityHash64(number, k)` is the deterministic random source.

Signals are inserted in the order they took effect, as the worker writes them (it emits a
signal when its journey's clock reaches it), so each part holds a stretch of time, as the
worker's inserts and their merges leave them; one insert in random time order would leave
parts that each span the whole month, which no live run produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DEPARTMENTS = ["customer_service"] * 4 + ["sales", "sales", "maintenance", "maintenance",
                                          "maintenance", "billing", "billing", "delivery",
                                          "delivery"]  # fmt: skip
STAGES = ["purchase", "delivery", "onboarding", "usage", "usage", "service", "service",
          "billing", "renewal"]  # fmt: skip
CHANNELS = ["phone", "phone", "email", "chat", "web", "app", "store", "field", "mail", "social"]
TYPES = ["contact"] * 6 + ["handoff"] * 2 + [
    "case_opened", "case_resolved", "case_reopened", "promise_made", "promise_made",
    "promise_kept", "promise_kept", "appointment_scheduled", "appointment_completed",
    "appointment_missed", "rework", "invoice_issued", "invoice_issued", "invoice_corrected",
    "billing_dispute_opened", "billing_dispute_resolved", "order_placed", "order_placed",
    "order_delivered", "order_delivered", "order_delayed", "feedback_received",
    "feedback_answered", "survey_response", "proactive_update", "journey_closed",
]  # fmt: skip
SIGNALS = {  # signal -> (impact, weight)
    "repeat_contact": (-8, 3), "context_lost": (-6, 2), "long_wait": (-4, 3),
    "promise_broken": (-15, 2), "promise_kept_late": (-5, 1), "promise_kept": (2, 3),
    "feedback_unanswered": (-10, 1), "rework": (-10, 3), "slow_resolution": (-5, 1),
    "first_contact_resolution": (3, 4), "proactive_update": (4, 2), "fast_fix": (3, 1),
}  # fmt: skip
REJECTIONS = ["missing_field", "naive_timestamp", "unknown_type", "bad_slug", "not_json",
              "wrong_type", "attribute_missing"]  # fmt: skip
PARTITIONS = 4


@dataclass(frozen=True)
class Scale:
    touchpoints: int
    journeys: int
    days: int = 30
    metric_days: int = 7

    @property
    def customers(self) -> int:
        return max(self.journeys * 2 // 5, 1)

    @property
    def signals(self) -> int:
        return self.journeys * 3

    @property
    def dead_letters(self) -> int:
        return max(self.touchpoints // 100, 1)


def pick(values: list[str], salt: str) -> str:
    """A ClickHouse expression choosing from `values` (repeats weight) by a hash."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"[{quoted}][1 + cityHash64({salt}) % {len(values)}]"


def _common(anchor: datetime, scale: Scale) -> str:
    # `jstart` is a function of the journey number only, so a journey's touchpoints, its
    # snapshots and its signals agree on when it started.
    return f"""
    toDateTime64('{anchor:%Y-%m-%d %H:%M:%S}', 3, 'UTC') AS anchor,
    addSeconds(anchor, -toInt64(cityHash64(j, 7) % {scale.days * 86400})) AS jstart,
    concat('J-', toString(j)) AS journey,
    concat('CUST-', toString(j % {scale.customers})) AS customer"""


SPAN_DAYS = 5  # a journey's touchpoints and signals fall within five days of its start


def _so_far(scale: Scale) -> float:
    """The share of a journey's activity that has happened by the anchor, over all journeys:
    a journey that started yesterday has had only its first day. The rest lies in the future
    and is not generated (clamping it to the anchor put a twelfth of all history on one
    millisecond; squeezing it into the time elapsed crowded the last hours), so the
    generators draw `1 / _so_far` times the rows and keep the ones that already happened."""
    return 1 - SPAN_DAYS / (2 * scale.days)


def drawn(rows: int, scale: Scale) -> int:
    return round(rows / _so_far(scale))


def touchpoints(anchor: datetime, scale: Scale, start: int, count: int) -> str:
    attributes = """multiIf(
        kind = 'promise_made', concat('{"promise_id":"P-', toString(j), '","due_at":"',
            formatDateTime(addHours(at, 48), '%Y-%m-%dT%H:%i:%SZ'), '"}'),
        kind = 'promise_kept', concat('{"promise_id":"P-', toString(j), '"}'),
        kind LIKE 'case_%', concat('{"case_id":"C-', toString(j), '"}'),
        kind LIKE 'billing_dispute_%', concat('{"dispute_id":"D-', toString(j), '"}'),
        kind = 'contact', concat('{"reason":"question","wait_seconds":',
            toString(cityHash64(number, 5) % 900), ',"resolved":',
            if(cityHash64(number, 6) % 10 < 6, 'true', 'false'), '}'),
        '{}')"""
    return f"""
INSERT INTO touchpoints (event_id, occurred_at, customer_id, journey_id, department, stage,
    channel, type, attributes, _topic, _partition, _offset, _ingested_at)
WITH cityHash64(number, 1) % {scale.journeys} AS j, {_common(anchor, scale)},
    addMilliseconds(jstart, toInt64(cityHash64(number, 2) % {SPAN_DAYS * 86_400_000})) AS at,
    {pick(TYPES, "number, 3")} AS kind
SELECT concat('ev-', toString(number)), at, customer, journey,
    {pick(DEPARTMENTS, "number, 4")}, {pick(STAGES, "j, 5")}, {pick(CHANNELS, "number, 6")},
    kind, {attributes}, 'touchpoints', j % {PARTITIONS}, number,
    addMilliseconds(at, 200 + cityHash64(number, 8) % 2800)
FROM numbers({start}, {count})
WHERE at <= anchor"""


def journeys(anchor: datetime, scale: Scale, latest: bool) -> str:
    # The older snapshot: fewer touchpoints, fewer lost points, an earlier version.
    share = "1.0" if latest else "0.5"
    spread = f"greatest(least({SPAN_DAYS * 86_400}, dateDiff('second', jstart, anchor)), 1)"
    return f"""
INSERT INTO journeys (journey_id, customer_id, started_at, last_event_at, updated_at, status,
    score, operational_score, survey_score, band, touchpoint_count, lost_points, gained_points,
    lost_points_beyond_front_desk, worst_department, worst_stage, score_model, version,
    _topic, _partition, _offset, _ingested_at)
WITH number AS j, {_common(anchor, scale)},
    addSeconds(jstart, toInt64(cityHash64(j, 9) % {spread} * {share})) AS last_at,
    round(pow((cityHash64(j, 10) % 100) / 100, 3) * 90 * {share}) AS lost,
    toFloat64(cityHash64(j, 11) % 10) AS gained,
    greatest(least(100 - lost + gained, 100), 0) AS operational,
    if(cityHash64(j, 12) % 5 = 0, toNullable(toFloat64(cityHash64(j, 13) % 101)), NULL) AS survey,
    if(survey IS NULL, operational, (operational + assumeNotNull(survey)) / 2) AS score,
    toUInt32(greatest(1, (1 + cityHash64(j, 15) % 20) * {share})) AS touched
SELECT journey, customer, jstart, last_at, last_at,
    if({int(latest)} AND cityHash64(j, 14) % 10 < 7, 'closed', 'open'), score, operational,
    survey, multiIf(score >= 75, 'good', score < 50, 'poor', 'neutral'), touched, lost, gained,
    lost * (cityHash64(j, 16) % 100) / 100, {pick(DEPARTMENTS, "j, 17")}, {pick(STAGES, "j, 5")},
    'v1', toUInt64(toUnixTimestamp64Milli(last_at)) * 4096 + touched,
    'touchpoints', j % {PARTITIONS}, j, addMilliseconds(last_at, 900)
FROM numbers({scale.journeys})"""


def journey_signals(anchor: datetime, scale: Scale) -> str:
    names = [name for name, (_, weight) in SIGNALS.items() for _ in range(weight)]
    impacts = ", ".join(f"'{name}'" for name in SIGNALS)
    values = ", ".join(str(float(impact)) for impact, _ in SIGNALS.values())
    return f"""
INSERT INTO journey_signals (signal_id, journey_id, customer_id, signal, department, stage,
    impact, effective_at, evidence_event_ids, reason, score_model, active, version,
    _topic, _partition, _offset, _ingested_at)
WITH number % {scale.journeys} AS j, {_common(anchor, scale)},
    {pick(names, "number, 18")} AS kind,
    addSeconds(jstart, toInt64(cityHash64(number, 20) % {SPAN_DAYS * 86_400})) AS effective
SELECT concat('S-', toString(number)), journey, customer, kind, {pick(DEPARTMENTS, "number, 19")},
    {pick(STAGES, "j, 5")}, transform(kind, [{impacts}], [{values}], 0.0), effective,
    [concat('ev-', toString(number))], concat(kind, ' in journey ', journey), 'v1',
    if(cityHash64(number, 21) % 50 = 0, 0, 1), toUInt64(toUnixTimestamp64Milli(effective)),
    'journeys.scores', j % {PARTITIONS}, number, addMilliseconds(effective, 900)
FROM numbers({drawn(scale.signals, scale)})
WHERE effective <= anchor
ORDER BY effective"""


def dead_letters(anchor: datetime, scale: Scale) -> str:
    return f"""
INSERT INTO dead_letters (received_at, reason_code, reason, department, raw, source_topic,
    source_partition, source_offset, _topic, _partition, _offset, _ingested_at)
WITH toDateTime64('{anchor:%Y-%m-%d %H:%M:%S}', 3, 'UTC') AS anchor,
    addSeconds(anchor, -toInt64(cityHash64(number, 30) % {scale.days * 86400})) AS received,
    {pick(REJECTIONS, "number, 31")} AS code
SELECT received, code, concat(code, ': field customer_id is missing'),
    if(code = 'not_json', '', {pick(DEPARTMENTS, "number, 32")}),
    concat('{{"event_id":"bad-', toString(number), '","department":"delivery"}}'),
    'touchpoints', number % {PARTITIONS}, number, 'touchpoints.dlq', number % {PARTITIONS},
    number, received
FROM numbers({scale.dead_letters})"""


def pipeline_metrics(anchor: datetime, scale: Scale) -> str:
    # Samples every 15 s: lag per input partition and retries, the worker's only metric rows
    # (pipeline/stream/health.py METRIC_NAMES).
    samples = scale.metric_days * 86400 // 15
    return f"""
INSERT INTO pipeline_metrics (time, worker, name, topic, partition, value)
WITH toDateTime64('{anchor:%Y-%m-%d %H:%M:%S}', 3, 'UTC') AS anchor,
    intDiv(number, 5) AS sample, number % 5 AS series,
    addSeconds(anchor, -toInt64(sample * 15)) AS at
SELECT at, 'worker-1:4242',
    if(series < 4, 'consumer_lag', 'sink_retries'),
    if(series < 4, 'touchpoints', ''),
    if(series < 4, toInt32(series), -1),
    if(series < 4, toFloat64(cityHash64(number) % 2000), toFloat64(cityHash64(number) % 50 = 0))
FROM numbers({samples * 5})"""


def statements(anchor: datetime, scale: Scale, chunk: int = 1_000_000) -> list[tuple[str, str]]:
    """(what, SQL) in insertion order; touchpoints in chunks to bound the engine's memory."""
    out = [
        (f"touchpoints {start:,}+", touchpoints(anchor, scale, start, min(chunk, total - start)))
        for start, total in (
            (s, drawn(scale.touchpoints, scale))
            for s in range(0, drawn(scale.touchpoints, scale), chunk)
        )
    ]
    out += [
        ("journeys (older snapshots)", journeys(anchor, scale, latest=False)),
        ("journeys (latest snapshots)", journeys(anchor, scale, latest=True)),
        ("journey_signals", journey_signals(anchor, scale)),
        ("dead_letters", dead_letters(anchor, scale)),
        ("pipeline_metrics", pipeline_metrics(anchor, scale)),
    ]
    return out
