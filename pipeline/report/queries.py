"""The report's SQL: one query per figure, each over the public tables with FINAL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.journey import ScoreModel, load_score_model
from pipeline.report.data import Breakdown, ReportData, ReportFilter, StoryGroup, TimelineEntry
from pipeline.report.loop import load_loop_closure
from pipeline.store import Store

_T = "DateTime64(3, 'UTC')"
_DEPARTMENT = "({all_departments:UInt8} = 1 OR has(splitByChar(',', {departments:String}), %s))"
# Every journey-level figure reads one model version (the tables hold a rescore's rows
# beside the live ones, migration 0007): `model_version` is the shown model's version.
_VERSION = "model_version = {model_version:String}"
SIGNALS = f"""journey_signals FINAL WHERE {_VERSION} AND active = 1 AND impact < 0
    AND effective_at >= {{since:{_T}}} AND effective_at < {{until:{_T}}}
    AND {_DEPARTMENT % "department"}"""
JOURNEYS = f"""journeys FINAL
    WHERE {_VERSION} AND last_event_at >= {{since:{_T}}} AND last_event_at < {{until:{_T}}}
    AND ({{all_departments:UInt8}} = 1 OR journey_id IN (
        SELECT journey_id FROM touchpoints
        WHERE has(splitByChar(',', {{departments:String}}), department)))"""
TOP_BREAKDOWNS = 8
EXAMPLE_TIMELINES = 3


def load_report(
    store: Store, where: ReportFilter, now: datetime | None = None, model: ScoreModel | None = None
) -> ReportData:
    """What the report shows of the journeys `model` scored (the default v1 when None): its
    version picks the rows, and it names the front desk and the bands, as it did for the
    worker or the rescore that scored them."""
    model = model or load_score_model()
    data = ReportData(
        filter=where,
        generated_at=now or datetime.now(UTC),
        front_desk=model.front_desk,
        good_at_least=model.good_at_least,
        poor_below=model.poor_below,
        model_version=model.version,
    )
    params = where.params() | {"model_version": model.version}
    _journey_totals(store, params, data)
    _trend(store, params, data)
    _heatmap(store, params, data)
    _breakdowns(store, params, data)
    _timelines(store, data, model.version)
    _rejections(store, params, data)
    data.loop_closure = load_loop_closure(store, params)
    data.touchpoints = int(
        store.query(
            f"""SELECT uniqExact(event_id) AS n FROM touchpoints
            WHERE occurred_at >= {{since:{_T}}} AND occurred_at < {{until:{_T}}}
              AND {_DEPARTMENT % "department"}""",
            params,
        )[0]["n"]
    )
    return data


def _journey_totals(store: Store, params: dict[str, Any], data: ReportData) -> None:
    row = store.query(
        f"""SELECT count() AS journeys, countIf(band = 'good') AS good,
               countIf(band = 'neutral') AS neutral, countIf(band = 'poor') AS poor,
               avgOrNull(score) AS average_score,
               countIf(lost_points_beyond_front_desk > 0) AS hit,
               countIf(lost_points_beyond_front_desk > 0 AND band = 'good') AS hit_good,
               countIf(lost_points_beyond_front_desk > 0 AND band = 'poor') AS hit_poor,
               minOrNull(started_at) AS first_event, maxOrNull(last_event_at) AS last_event
        FROM {JOURNEYS}""",
        params,
    )[0]
    data.journeys, data.good = int(row["journeys"]), int(row["good"])
    data.neutral, data.poor = int(row["neutral"]), int(row["poor"])
    data.average_score = row["average_score"]
    data.hit_beyond_front_desk = StoryGroup(
        "lost points beyond the front desk",
        int(row["hit"]), int(row["hit_good"]), int(row["hit_poor"]),
    )  # fmt: skip
    data.first_event, data.last_event = row["first_event"], row["last_event"]


def _trend(store: Store, params: dict[str, Any], data: ReportData) -> None:
    rows = store.query(
        f"""SELECT toDate(last_event_at) AS day, count() AS journeys, avg(score) AS score,
               countIf(band = 'good') AS good, countIf(band = 'poor') AS poor
        FROM {JOURNEYS} GROUP BY day ORDER BY day""",
        params,
    )
    data.trend = [
        (r["day"], int(r["journeys"]), float(r["score"]), int(r["good"]), int(r["poor"]))
        for r in rows
    ]


def _heatmap(store: Store, params: dict[str, Any], data: ReportData) -> None:
    rows = store.query(
        f"SELECT department, stage, -sum(impact) AS lost FROM {SIGNALS} GROUP BY department, stage",
        params,
    )
    data.heatmap = {(r["department"], r["stage"]): float(r["lost"]) for r in rows}


def _breakdowns(store: Store, params: dict[str, Any], data: ReportData) -> None:
    rows = store.query(
        # Per journey first, so the examples are the three smallest journey ids whatever
        # order the engine reads parts in (groupUniqArray(N) kept the first N it met).
        f"""SELECT department, stage, signal, sum(n) AS signals, sum(journey_lost) AS lost,
               argMin(journey_reason, first_signal) AS example_reason,
               groupArraySorted(3)(journey_id) AS examples
        FROM (
            SELECT department, stage, signal, journey_id, count() AS n,
                   -sum(impact) AS journey_lost, min(signal_id) AS first_signal,
                   argMin(reason, signal_id) AS journey_reason
            FROM {SIGNALS}
            GROUP BY department, stage, signal, journey_id
        )
        GROUP BY department, stage, signal
        ORDER BY lost DESC, department, stage, signal
        LIMIT {TOP_BREAKDOWNS}""",
        params,
    )
    data.breakdowns = [
        Breakdown(
            r["department"],
            r["stage"],
            r["signal"],
            int(r["signals"]),
            float(r["lost"]),
            r["example_reason"],
            list(r["examples"]),
        )
        for r in rows
    ]


def _timelines(store: Store, data: ReportData, model_version: str) -> None:
    chosen: list[str] = []
    for breakdown in data.breakdowns:
        fresh = [j for j in breakdown.example_journeys if j not in chosen]
        if fresh and len(chosen) < EXAMPLE_TIMELINES:
            chosen.append(fresh[0])
    if not chosen:
        return
    ids = {"ids": ",".join(chosen), "model_version": model_version}
    events = store.query(
        """SELECT journey_id, occurred_at AS at, department, stage, type, attributes
        FROM touchpoints FINAL WHERE has(splitByChar(',', {ids:String}), journey_id)
        ORDER BY occurred_at, event_id""",
        ids,
    )
    signals = store.query(
        """SELECT journey_id, effective_at AS at, department, stage, reason, impact
        FROM journey_signals FINAL
        WHERE model_version = {model_version:String} AND active = 1
          AND has(splitByChar(',', {ids:String}), journey_id)
        ORDER BY effective_at, signal_id""",
        ids,
    )
    timelines: dict[str, list[TimelineEntry]] = {journey: [] for journey in chosen}
    for e in events:
        what = _describe(e["type"], e["attributes"])
        timelines[e["journey_id"]].append(TimelineEntry(e["at"], e["department"], e["stage"], what))
    for s in signals:
        entry = TimelineEntry(s["at"], s["department"], s["stage"], s["reason"], float(s["impact"]))
        timelines[s["journey_id"]].append(entry)
    for entries in timelines.values():
        entries.sort(key=lambda entry: (entry.at, entry.impact is not None))
    data.timelines = timelines


def _describe(event_type: str, attributes: str) -> str:
    """The event type, plus the one attribute a reader needs to follow the story."""
    try:
        values = orjson.loads(attributes or "{}")
    except orjson.JSONDecodeError:
        values = {}
    for key in ("description", "reason", "about", "outcome", "to_department"):
        if isinstance(values, dict) and values.get(key):
            return f"{event_type.replace('_', ' ')}: {values[key]}"
    return event_type.replace("_", " ")


def _rejections(store: Store, params: dict[str, Any], data: ReportData) -> None:
    rows = store.query(
        f"""SELECT department, reason_code, count() AS rejected FROM dead_letters FINAL
        WHERE received_at >= {{since:{_T}}} AND received_at < {{until:{_T}}}
          AND {_DEPARTMENT % "department"}
        GROUP BY department, reason_code""",
        params,
    )
    data.rejections = {(r["department"], r["reason_code"]): int(r["rejected"]) for r in rows}
