"""What the journey engine hands out: signals, journey scores and the changes of one step.

These are msgspec structs whose field names are the ClickHouse columns of
`pipeline/store/migrations/0001_core_tables.sql` (tables `journey_signals`, `journeys`,
`touchpoints`), so the sink can write them with `msgspec.to_builtins` and no renaming.
All datetimes are timezone-aware UTC and all of them are *event time*: replaying history
produces byte-identical outputs.

`Signal`, `JourneyScore` and `Assignment` are built positionally on the hot path (once or
more per event: by keyword, the 19 fields of a score took 0.58 us, positionally 0.09 us),
so their field order is part of their definition. None can be part of a reference cycle
(atoms, datetimes, lists of strings or signals), so the collector does not track them.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class Signal(msgspec.Struct, frozen=True, gc=False):
    """A scored finding in a journey, attributed to the department and stage responsible.

    `signal_id` is derived from the journey, the kind and the anchoring evidence (the event
    that created the obligation or the finding), so a replay writes the same id and a
    signal whose details change keeps its id. `impact` is negative when experience was
    lost, positive when gained. `effective_at` is the event time the signal takes effect
    (the deadline for deadline signals).
    """

    signal_id: str
    journey_id: str
    customer_id: str
    signal: str
    department: str
    stage: str
    impact: float
    effective_at: datetime
    evidence_event_ids: list[str]
    reason: str
    score_model: str


class JourneyScore(msgspec.Struct, frozen=True, gc=False):
    """A journey's score snapshot (the `journeys` table row and the `journeys.scores` message).

    `score` is the operational score, or its blend with `survey_score` when the customer
    answered a survey. `lost_points` and `gained_points` are positive magnitudes;
    `lost_points_beyond_front_desk` is the part of `lost_points` attributed to departments
    outside the model's front desk. `worst_department` / `worst_stage` lost the most points
    ("" when nothing was lost). `updated_at` is the event-time clock of the book when the
    snapshot was made. `overflow_events` counts events past the per-journey cap that were
    acknowledged but not scored (see docs/score-model.md, "Bounded state").
    """

    journey_id: str
    customer_id: str
    started_at: datetime
    last_event_at: datetime
    status: str
    score: float
    operational_score: float
    survey_score: float | None
    band: str
    touchpoint_count: int
    lost_points: float
    gained_points: float
    lost_points_beyond_front_desk: float
    worst_department: str
    worst_stage: str
    score_model: str
    signals: list[Signal]
    updated_at: datetime
    overflow_events: int = 0


class Assignment(msgspec.Struct, frozen=True, gc=False):
    """Where a touchpoint belongs: its assigned journey and resolved stage (touchpoints table)."""

    event_id: str
    journey_id: str
    stage: str


class PromiseDue(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An open promise due soon: what an alert to the promising department needs."""

    journey_id: str
    customer_id: str
    promise_id: str
    description: str
    department: str
    stage: str
    due_at: datetime
    event_id: str
    made_at: datetime | None = None  # when the promise was made (its event's time)


class Changes(msgspec.Struct, kw_only=True):
    """What one `add` or `advance` changed in a book.

    - `assignment`: the added touchpoint's journey and stage (None for `advance`, for a
      duplicate, and for an event dropped as too late).
    - `scores`: the new snapshot of every journey whose score or signals changed.
    - `appeared`: signals that are new, or whose details changed (same `signal_id`: upsert).
    - `retracted`: signals the event set no longer supports (write them with `active = 0`).
    - `turned_poor`: the journeys among `scores` whose band became `poor` in this step.
    - `retired`: journey ids that no longer exist because a late event merged or
      re-identified customer-keyed journeys (their rows are superseded by `scores`).
    - `moved`: touchpoints already stored whose journey id changed for the same reason,
      with their new journey (`segments.moved_touchpoints`); the stream moves their stored
      rows (`pipeline.stream.sink.move_touchpoints`).
    - `duplicate`: the event_id was already in the book (nothing else changed).
    - `too_late`: the event was older than the book's retention watermark and ignored.
    """

    assignment: Assignment | None = None
    scores: list[JourneyScore] = msgspec.field(default_factory=list)
    appeared: list[Signal] = msgspec.field(default_factory=list)
    retracted: list[Signal] = msgspec.field(default_factory=list)
    turned_poor: list[JourneyScore] = msgspec.field(default_factory=list)
    retired: list[str] = msgspec.field(default_factory=list)
    moved: list[Assignment] = msgspec.field(default_factory=list)
    duplicate: bool = False
    too_late: bool = False

    def __bool__(self) -> bool:
        """True when the step changed anything the stream must publish."""
        return bool(self.scores or self.appeared or self.retracted or self.retired)


class ScoreModelError(ValueError):
    """The score model file is invalid; the message names the key, the value and what was
    expected."""
