"""Correct signals that only an abandoned history left stored: retract or re-assert them.

A worker killed after its rows reached ClickHouse but before its state did replays that
input on restart. Events from two topics (touchpoints and the re-keyed ones) may then
interleave differently, so the replay can pass through other intermediate states: a signal
stored active by the lost run may never appear, and so never be retracted, in the replay.
Each flush therefore compares the journeys it writes with their stored signals and
retracts the active ones the journey no longer has. It does so always, not only while
catching up after a start: a replay cannot be told apart reliably from live input (a
journey's next event may come long after the restart), and the check is one primary-key
query per flush.

Why the journey's current version is enough: an orphaned signal belonged to the engine's
state for a subset of the journey's events (results depend on the event set only), so its
version is below that of any larger set; by the journey's last write in the replay its set
is at least as large, and when equal the signal would still be current.

The other way round: a retraction written by a run that was lost in turn (two crashes, two
different interleavings) carries that run's journey version, while the replay writes the
signal, when it appears again, with the version of the step it appears in, which can be
lower: the retraction would hide a current signal for good. So a current signal whose
stored state is retracted, at a version below the journey's, is written again, active, at
the journey's version; one retracted at a higher version is left to a later flush, and the
journey's last flush of the replay always has the higher version (its event set is larger
than the lost run's, or equal, and then the signal was not current there either).
"""

from __future__ import annotations

from typing import Any

from pipeline.store import Store
from pipeline.stream.rows import Position, Row, SignalSet, signal_row

_PROVENANCE = ("_topic", "_partition", "_offset", "_ingested_at")
_SEPARATOR = "\x1e"


def signal_corrections(
    store: Store,
    signal_sets: dict[str, SignalSet],
    at: Position,
    model_version: str,
) -> list[Row]:
    """Rows that retract stored active signals the journeys no longer have, and re-assert
    current signals stored retracted, among the rows of the worker's model version: a
    rescore's rows of another version (migration 0007) hold other signals of the same
    journeys, which are not the worker's to correct."""
    # Only the four columns the check needs, for every signal of the journeys (a
    # checkpoint's thousands): decoding whole rows was most of the step. The rare orphans'
    # whole rows are read afterwards.
    journeys = [j for j in sorted(signal_sets) if _SEPARATOR not in j]
    if not journeys:
        return []
    stored = _signals(store, "journey_id, signal_id, version, active", journeys, model_version)
    orphaned: dict[str, set[str]] = {}
    rows: list[Row] = []
    for row in stored:
        version, current = signal_sets[row["journey_id"]]
        if row["version"] >= version:
            continue  # a later flush decides, at a higher version of the journey
        if row["active"] and row["signal_id"] not in current:
            orphaned.setdefault(row["journey_id"], set()).add(row["signal_id"])
        elif not row["active"] and row["signal_id"] in current:
            rows.append(signal_row(current[row["signal_id"]], True, version, at))
    if not orphaned:
        return rows
    for row in _signals(store, "*", sorted(orphaned), model_version, active_only=True):
        version, _ = signal_sets[row["journey_id"]]
        if row["signal_id"] not in orphaned[row["journey_id"]] or row["version"] >= version:
            continue  # not an orphan, or written since the first read
        retraction: dict[str, Any] = {k: v for k, v in row.items() if k not in _PROVENANCE}
        rows.append(retraction | {"active": 0, "version": version} | at.provenance())
    return rows


def _signals(
    store: Store, columns: str, journeys: list[str], model_version: str, active_only: bool = False
) -> list[dict[str, Any]]:
    # One String parameter split server-side: both backends bind it the same way (array
    # parameters they do not). A journey id containing the separator is not checked.
    return store.query(
        f"SELECT {columns} FROM journey_signals FINAL WHERE model_version = {{version:String}} "
        + ("AND active = 1 " if active_only else "")
        + "AND journey_id IN "
        "(SELECT arrayJoin(splitByChar('\x1e', {journeys:String})))",
        {"journeys": _SEPARATOR.join(journeys), "version": model_version},
    )
