"""Rows for the public tables (0001_core_tables.sql) and the messages of the output topics.

Every row carries its Kafka provenance (`_topic`, `_partition`, `_offset`, `_ingested_at`):
the input message that caused it. Versions are derived from event time and the journey's
size, never from the wall clock, so a replay after a crash writes the same versions and
`ReplacingMergeTree` keeps the same row as an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec
import orjson

from pipeline.contract import Rejection, Touchpoint
from pipeline.journey import Assignment, Changes, JourneyScore, PromiseDue, Signal

Row = dict[str, Any]

# version = the journey's size in the top 12 bits, its event-time clock (microseconds, good
# until 2112) below. A journey id's event set only grows, so a larger journey is always the
# newer state, whatever deadlines a smaller one saw fire (a replay after a crash can reach a
# deadline in another order); at the same size, the later clock (a fired deadline) wins.
_CLOCK_BITS = 52
_SIZE_MAX = (1 << 12) - 1
_CLOCK_MAX = (1 << _CLOCK_BITS) - 1


class Position(msgspec.Struct, frozen=True, gc=False):
    """Where a message came from, and when the worker took it in. (A Struct: one per
    event, built in a tenth of a frozen dataclass's time.)"""

    topic: str
    partition: int
    offset: int
    ingested_at: datetime

    def provenance(self) -> Row:
        return {
            "_topic": self.topic,
            "_partition": self.partition,
            "_offset": self.offset,
            "_ingested_at": self.ingested_at,
        }


def journey_version(score: JourneyScore) -> int:
    """Deterministic and increasing over a journey's snapshots (see the note above)."""
    clock_us = int(score.updated_at.timestamp() * 1_000_000)
    size = min(score.touchpoint_count + score.overflow_events, _SIZE_MAX)
    return (size << _CLOCK_BITS) | min(max(clock_us, 0), _CLOCK_MAX)


def superseding_version(clock_us: int) -> int:
    """A version above every snapshot of any journey: for journeys that ceased to exist."""
    return (_SIZE_MAX << _CLOCK_BITS) | min(max(clock_us, 0), _CLOCK_MAX)


def retired_journey_row(
    journey_id: str, customer_id: str, score_model: str, version: int, at: Position
) -> Row:
    """Deletes a journey that a late event merged into another (`is_deleted` under FINAL)."""
    return {
        "journey_id": journey_id,
        "customer_id": customer_id,
        "status": "retired",
        "band": "",
        "score_model": score_model,
        "model_version": score_model,
        "version": version,
        "is_deleted": 1,
        "_topic": at.topic,
        "_partition": at.partition,
        "_offset": at.offset,
        "_ingested_at": at.ingested_at,
    }


def touchpoint_row(touchpoint: Touchpoint, assignment: Assignment | None, at: Position) -> Row:
    """An accepted touchpoint; `assignment` None means it came too late to be placed."""
    return {  # provenance written out, not merged from `at.provenance()`: a dict less per event
        "event_id": touchpoint.event_id,
        "occurred_at": touchpoint.occurred_at,
        "customer_id": touchpoint.customer_id,
        "journey_id": assignment.journey_id if assignment else "",
        "department": touchpoint.department,
        "stage": assignment.stage if assignment else (touchpoint.stage or ""),
        "channel": touchpoint.channel or "",
        "type": touchpoint.type,
        "attributes": orjson.dumps(touchpoint.attributes).decode(),
        "schema_version": touchpoint.schema_version,
        "_topic": at.topic,
        "_partition": at.partition,
        "_offset": at.offset,
        "_ingested_at": at.ingested_at,
    }


def dead_letter_row(raw: bytes, rejection: Rejection, at: Position) -> Row:
    """The whole payload, with its size and sha256: the dead-letter topic's copy may be cut
    to the topic's message size (`Runtime._dead_letter`); these name what it was."""
    return {
        "received_at": at.ingested_at,
        "reason_code": rejection.code,
        "reason": rejection.message,
        "department": rejection.department,
        "raw": raw.decode("utf-8", "replace"),
        "raw_size": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "source_topic": at.topic,
        "source_partition": at.partition,
        "source_offset": at.offset,
        "_topic": at.topic,
        "_partition": at.partition,
        "_offset": at.offset,
        "_ingested_at": at.ingested_at,
    }


def journey_row(score: JourneyScore, at: Position, version: int | None = None) -> Row:
    """The `journeys` row: the score's fields (in the struct's order, without its signals,
    rows of their own, and `overflow_events`), its version and model version (which keeps
    the rows of each model apart in the tables' sorting keys, 0007: the live worker's rows
    and a rescore's, pipeline.rescore, are built here alike), and the provenance.

    Written out as one dict, not converted (`msgspec.to_builtins` of the score) and
    merged: that took 5 us a journey. The conversion is what it must equal: a unit test
    (tests/unit/test_stream_seal.py) holds the two together, so a field added to
    `JourneyScore` fails it rather than silently missing from the row. `version`: the
    score's `journey_version` when the caller has it already."""
    return {
        "journey_id": score.journey_id,
        "customer_id": score.customer_id,
        "started_at": score.started_at,
        "last_event_at": score.last_event_at,
        "status": score.status,
        "score": score.score,
        "operational_score": score.operational_score,
        "survey_score": score.survey_score,
        "band": score.band,
        "touchpoint_count": score.touchpoint_count,
        "lost_points": score.lost_points,
        "gained_points": score.gained_points,
        "lost_points_beyond_front_desk": score.lost_points_beyond_front_desk,
        "worst_department": score.worst_department,
        "worst_stage": score.worst_stage,
        "score_model": score.score_model,
        "updated_at": score.updated_at,
        "version": journey_version(score) if version is None else version,
        "model_version": score.score_model,
        "_topic": at.topic,
        "_partition": at.partition,
        "_offset": at.offset,
        "_ingested_at": at.ingested_at,
    }


def signal_row(signal: Signal, active: bool, version: int, at: Position) -> Row:
    """The `journey_signals` row: the signal's fields, its state and the provenance,
    written out as one dict for speed (see `journey_row`; the same test holds it to the
    signal's conversion). The evidence list is the signal's own: a row is only read once
    built."""
    return {
        "signal_id": signal.signal_id,
        "journey_id": signal.journey_id,
        "customer_id": signal.customer_id,
        "signal": signal.signal,
        "department": signal.department,
        "stage": signal.stage,
        "impact": signal.impact,
        "effective_at": signal.effective_at,
        "evidence_event_ids": signal.evidence_event_ids,
        "reason": signal.reason,
        "score_model": signal.score_model,
        "active": int(active),
        "version": version,
        "model_version": signal.score_model,
        "_topic": at.topic,
        "_partition": at.partition,
        "_offset": at.offset,
        "_ingested_at": at.ingested_at,
    }


def score_message(score: JourneyScore, version: int | None = None) -> bytes:
    """The `journeys.scores` snapshot (docs/architecture.md#public-surfaces). `version`:
    the score's `journey_version` when the caller has it already."""
    return orjson.dumps(
        {
            "journey_id": score.journey_id,
            "customer_id": score.customer_id,
            "score": score.score,
            "band": score.band,
            "operational_score": score.operational_score,
            "survey_score": score.survey_score,
            "status": score.status,
            "score_model": score.score_model,
            "updated_at": score.updated_at,
            "version": journey_version(score) if version is None else version,
            "signals": [
                {
                    "signal": s.signal,
                    "department": s.department,
                    "stage": s.stage,
                    "impact": s.impact,
                    "reason": s.reason,
                }
                for s in score.signals
            ],
        },
        option=orjson.OPT_UTC_Z,
    )


def alert_message(
    kind: str,
    department: str,
    body: Row,
    *,
    raised_at: datetime,
    act_by: datetime,
    context: Row,
) -> Row:
    """An alert for `department` (the `journeys.alerts` message and the webhook's body).

    `alert_id` is stable so a consumer can drop a re-sent one. `raised_at` and `act_by` are
    event time, derived from the journey alone (not from when the worker noticed), so a
    replay raises the same alert with the same times; `act_by` is the deadline the
    loop-closure figures measure the department's action against (migration 0008).
    `context` is what the worker holds about the journey (`alert_context.journey_context`).
    """
    alert_id = f"{kind}:{body.get('journey_id', '')}:{body.get('ref', '')}"
    head = {"alert_id": alert_id, "kind": kind, "department": department}
    return head | body | {"raised_at": raised_at, "act_by": act_by, "context": context}


def alert_bytes(alert: Row) -> bytes:
    return orjson.dumps(alert, option=orjson.OPT_UTC_Z)


def alert_row(alert: Row, at: Position) -> Row:
    """The `alerts` table's row (migration 0008): the alert's keys, times and whole JSON."""
    return {
        "alert_id": alert["alert_id"],
        "kind": alert["kind"],
        "department": alert["department"],
        "journey_id": alert["journey_id"],
        "customer_id": alert["customer_id"],
        "raised_at": alert["raised_at"],
        "act_by": alert["act_by"],
        "alert": alert_bytes(alert).decode(),
        "_topic": at.topic,
        "_partition": at.partition,
        "_offset": at.offset,
        "_ingested_at": at.ingested_at,
    }


def promise_due_alert(due: PromiseDue, horizon: timedelta, context: Row) -> Row:
    # Raised when the promise entered the horizon, or when it was made inside it.
    raised_at = max(due.due_at - horizon, due.made_at or due.due_at - horizon)
    return alert_message(
        "promise_due_soon",
        due.department,
        {
            "journey_id": due.journey_id,
            "customer_id": due.customer_id,
            "ref": due.promise_id,
            "promise_id": due.promise_id,
            "description": due.description,
            "stage": due.stage,
            "due_at": due.due_at,
        },
        raised_at=raised_at,
        act_by=due.due_at,
        context=context,
    )


def signal_alert(signal: Signal, act_within: timedelta, context: Row) -> Row:
    """`promise_broken` or `feedback_unanswered`: raised when the deadline passed."""
    return alert_message(
        signal.signal,
        signal.department,
        {
            "journey_id": signal.journey_id,
            "customer_id": signal.customer_id,
            "ref": signal.signal_id,
            "stage": signal.stage,
            "reason": signal.reason,
            "impact": signal.impact,
            "effective_at": signal.effective_at,
        },
        raised_at=signal.effective_at,
        act_by=signal.effective_at + act_within,
        context=context,
    )


def turned_poor_alert(score: JourneyScore, act_within: timedelta, context: Row) -> Row:
    department = score.worst_department or "unattributed"
    return alert_message(
        "journey_turned_poor",
        department,
        {
            "journey_id": score.journey_id,
            "customer_id": score.customer_id,
            "ref": str(journey_version(score)),
            "score": score.score,
            "band": score.band,
            "worst_stage": score.worst_stage,
            "lost_points": score.lost_points,
            "updated_at": score.updated_at,
        },
        raised_at=score.updated_at,
        act_by=score.updated_at + act_within,
        context=context,
    )


# A journey's version and its current signals by id, as a checkpoint writes them.
SignalSet = tuple[int, dict[str, Signal]]


class Built(NamedTuple):
    journey_rows: list[Row]
    signal_rows: list[Row]
    scores: list[tuple[str, bytes]]  # journey_id -> its `journeys.scores` message
    # journey_id -> (version, its current signals by id): lets the checkpoint correct
    # signals a replay after a crash left stored otherwise (`pipeline.stream.reconcile`).
    signal_sets: dict[str, SignalSet]


@dataclass
class Latest:
    """The last snapshot of each journey and the last state of each signal, kept as engine
    objects and built into rows and messages once (`build`): a journey with five events
    before a checkpoint is re-scored five times, but only its last snapshot is written
    (building every one cost a tenth of the processor's time)."""

    # journey_id -> its last score, or the row that retires it (a late event merged it)
    journeys: dict[str, tuple[JourneyScore, Position] | Row] = field(default_factory=dict)
    signals: dict[str, tuple[Signal, bool, int, Position]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.journeys) + len(self.signals)

    def keep(
        self, changes: Changes, customer_id: str, clock_us: int, score_model: str, at: Position
    ) -> None:
        """Take one engine step of a book (whose clock is `clock_us`): its scores, its retired
        journeys and its signals, over what these held. The worker's processor and the bulk
        re-score both keep their steps here, so they write the same rows."""
        # Rows of journeys that no longer exist (a late event merged or re-identified them)
        # outrank every earlier row of theirs: the book's clock is at least theirs.
        journeys = self.journeys
        retired = changes.retired
        if retired:
            superseding = superseding_version(clock_us)
            for journey_id in retired:
                journeys[journey_id] = retired_journey_row(
                    journey_id, customer_id, score_model, superseding, at
                )
        for score in changes.scores:
            journeys[score.journey_id] = (score, at)
        if not changes.appeared and not changes.retracted:
            return  # most steps: the versions below are only for signals (and built later)
        superseding = superseding_version(clock_us)
        versions = {score.journey_id: journey_version(score) for score in changes.scores}
        for signals, active in ((changes.appeared, True), (changes.retracted, False)):
            for signal in signals:
                version = versions.get(signal.journey_id, superseding)
                self.signals[signal.signal_id] = (signal, active, version, at)

    def merge(self, later: Latest) -> None:
        """Take the states of `later` (processed after these) over these."""
        self.journeys.update(later.journeys)
        self.signals.update(later.signals)

    def build(self, stream: bool = True) -> Built:
        """The rows; with `stream`, also what only the live stream uses: each journey's
        `journeys.scores` message and its signal set (the bulk re-score has no use for
        them, and building them was a tenth of its row time)."""
        built = Built([], [], [], {})
        for journey_id, last in self.journeys.items():
            if isinstance(last, dict):  # retired
                built.journey_rows.append(last)
                built.signal_sets[journey_id] = (last["version"], {})
                continue
            score, at = last
            version = journey_version(score)  # once for the row and the message
            built.journey_rows.append(journey_row(score, at, version))
            if stream:
                built.scores.append((journey_id, score_message(score, version)))
                current = {signal.signal_id: signal for signal in score.signals}
                built.signal_sets[journey_id] = (version, current)
        for signal, active, version, at in self.signals.values():
            built.signal_rows.append(signal_row(signal, active, version, at))
        return built
