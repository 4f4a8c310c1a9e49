"""A checkpoint builds journey and signal rows, score messages and signal sets once, from
the last states of everything taken since the previous one (`PartitionBatch.seal`): the
result must be what processing the same messages as one batch writes, however the
messages were sliced into fetches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import Touchpoint
from pipeline.stream.rows import (
    Position,
    journey_row,
    journey_version,
    signal_row,
    touchpoint_row,
)
from pipeline.stream.sink import PartitionBatch
from tests.support.stream_messages import NOW, SCRIPT, inbound, processor, promise, touchpoint

MESSAGES = [
    *SCRIPT,
    promise("p1", 80, 2, "J3"),
    touchpoint("p2", 60 * 5, journey_id="J3", attributes={"resolved": False}),
    touchpoint("c0", 10, journey_id=None, customer_id="c3", attributes={"resolved": True}),
]


def sealed(cuts: list[int]) -> dict[str, Any]:
    """The batch a checkpoint writes after taking MESSAGES in slices ending at `cuts`."""
    p, batch, start = processor(), PartitionBatch(0), 0
    for end in [*sorted(set(cuts)), len(MESSAGES)]:
        if end <= start:
            continue
        out = p.process(0, inbound(MESSAGES[start:end], 0, start), NOW, build_rows=False)
        for table, rows in out.rows.items():
            batch.rows.setdefault(table, []).extend(rows)
        batch.latest.merge(out.latest)
        start = end
    batch.seal()
    return {
        "journeys": sorted(map(_key, batch.rows.get("journeys", []))),
        "signals": _active(batch.rows.get("journey_signals", [])),
        "scores": batch.scores,
        "signal_sets": batch.signal_sets,
    }


def whole() -> dict[str, Any]:
    out = processor().process(0, inbound(MESSAGES), NOW)
    return {
        "journeys": sorted(map(_key, out.rows.get("journeys", []))),
        "signals": _active(out.rows.get("journey_signals", [])),
        "scores": {key.encode(): body for key, body in out.scores},
        "signal_sets": out.signal_sets,
    }


def _active(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    # Signals of intermediate states (appeared, then retracted: rows with active = 0)
    # depend on how the input was sliced, as they do on how it was fetched, and so does a
    # signal's version (its journey's when it appeared: a deadline fires when the clock
    # passes it); the active signals themselves do not.
    return sorted(_key(row | {"version": 0}) for row in rows if row["active"])


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    # Provenance names the last message taken with the row's state, which depends on the
    # slicing (a deadline fires when the partition's clock passes it, at whichever message
    # took the clock there); the state itself does not.
    return tuple(sorted((k, str(v)) for k, v in row.items() if not k.startswith("_")))


def test_one_slice_seals_to_what_one_batch_writes() -> None:
    assert sealed([]) == whole()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, len(MESSAGES) - 1), max_size=len(MESSAGES)))
def test_any_slicing_seals_to_what_one_batch_writes(cuts: list[int]) -> None:
    assert sealed(cuts) == whole()


def test_a_sealed_batch_counts_its_unbuilt_rows_and_seals_once() -> None:
    p, batch = processor(), PartitionBatch(0)
    batch.latest.merge(p.process(0, inbound(MESSAGES), NOW, build_rows=False).latest)
    pending = batch.row_count
    assert pending == len(batch.latest) > 0  # counted for the flush and backpressure limits
    batch.seal()
    assert batch.row_count == pending and not batch.latest
    batch.seal()  # nothing left to build: the rows are not written twice
    assert batch.row_count == pending


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(MESSAGES) - 1), max_size=6))
def test_a_signal_row_never_outranks_its_journeys_row(cuts: list[int]) -> None:
    """A signal row carries the version of its journey's snapshot of the same step (or the
    superseding version of a journey that ceased to exist, as that journey's row does), so
    under FINAL it never outranks the journey row written with it."""
    p, batch, start = processor(), PartitionBatch(0), 0
    for end in [*sorted(set(cuts)), len(MESSAGES)]:
        if end > start:
            out = p.process(0, inbound(MESSAGES[start:end], 0, start), NOW, build_rows=False)
            batch.latest.merge(out.latest)
            start = end
    batch.seal()
    journeys = {row["journey_id"]: row["version"] for row in batch.rows["journeys"]}
    signals = batch.rows["journey_signals"]
    assert signals and all(row["journey_id"] in journeys for row in signals)
    assert all(row["version"] <= journeys[row["journey_id"]] for row in signals), [
        (row["signal_id"], row["version"], journeys[row["journey_id"]]) for row in signals
    ]


def test_touchpoint_rows_carry_the_provenance_every_row_carries() -> None:
    """`touchpoint_row` writes the provenance out (a dict less per event): it must stay the
    columns and values of `Position.provenance`, which the other rows merge in."""
    tp = Touchpoint(event_id="e1", occurred_at=NOW, customer_id="c1", department="billing",
                    type="contact", journey_id="J1")  # fmt: skip
    at = Position("touchpoints", 2, 41, NOW)
    row = touchpoint_row(tp, None, at)
    assert {key: row[key] for key in row if key.startswith("_")} == at.provenance()


def test_journey_and_signal_rows_are_the_conversion_of_their_structs() -> None:
    """`journey_row` and `signal_row` write their columns out (a conversion and two dict
    merges less per row): they must stay the struct's fields in its order (a score's
    without its signals and overflow count), then state and provenance, as the conversion
    they replaced built them. A field added to `JourneyScore` or `Signal` fails this."""
    out = processor().process(0, inbound(MESSAGES), NOW, build_rows=False)
    at = Position("touchpoints", 2, 41, NOW)
    scores = [last[0] for last in out.latest.journeys.values() if not isinstance(last, dict)]
    assert scores and out.latest.signals
    for score in scores:
        fields = msgspec.to_builtins(msgspec.structs.replace(score, signals=[]),
                                     builtin_types=(datetime,))  # fmt: skip
        del fields["signals"], fields["overflow_events"]
        version = {"version": journey_version(score), "model_version": score.score_model}
        expected = fields | version | at.provenance()
        assert list(journey_row(score, at).items()) == list(expected.items())
    for signal, active, version_, _ in out.latest.signals.values():
        fields = msgspec.to_builtins(signal, builtin_types=(datetime,))
        state = {"active": int(active), "version": version_, "model_version": signal.score_model}
        expected = fields | state | at.provenance()
        assert list(signal_row(signal, active, version_, at).items()) == list(expected.items())
