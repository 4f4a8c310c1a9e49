"""Retract signals that only an abandoned history produced.

A worker killed after its rows reached ClickHouse but before its state did replays that
input on restart. Events from two topics (touchpoints and the re-keyed ones) may then
interleave differently, so the replay can pass through other intermediate states: a signal
stored active by the lost run may never appear, and so never be retracted, in the replay.
Each flush therefore compares the journeys it writes with their stored active signals and
retracts the ones the journey no longer has. It does so always, not only while catching up
after a start: a replay cannot be told apart reliably from live input (a journey's next
event may come long after the restart), and the check is one primary-key query per flush.

Why the journey's current version is enough: an orphaned signal belonged to the engine's
state for a subset of the journey's events (results depend on the event set only), so its
version is below that of any larger set; by the journey's last write in the replay its set
is at least as large, and when equal the signal would still be current.
"""

from __future__ import annotations

from typing import Any

from pipeline.store import Store
from pipeline.stream.rows import Position, Row

_PROVENANCE = ("_topic", "_partition", "_offset", "_ingested_at")
_SEPARATOR = "\x1e"


def orphaned_signals(
    store: Store,
    signal_sets: dict[str, tuple[int, frozenset[str]]],
    at: Position,
    model_version: str,
) -> list[Row]:
    """Retraction rows for stored active signals the journeys no longer have, among the
    rows of the worker's model version: a rescore's rows of another version (migration
    0007) hold other signals of the same journeys, which are not the worker's to retract."""
    # Only the three columns the check needs, for every active signal of the journeys (a
    # checkpoint's thousands): decoding whole rows was most of the step. The rare orphans'
    # whole rows are read afterwards.
    journeys = [j for j in sorted(signal_sets) if _SEPARATOR not in j]
    if not journeys:
        return []
    stored = _active_signals(store, "journey_id, signal_id, version", journeys, model_version)
    orphaned: dict[str, set[str]] = {}
    for row in stored:
        version, current = signal_sets[row["journey_id"]]
        if row["signal_id"] in current or row["version"] >= version:
            continue
        orphaned.setdefault(row["journey_id"], set()).add(row["signal_id"])
    if not orphaned:
        return []
    rows: list[Row] = []
    for row in _active_signals(store, "*", sorted(orphaned), model_version):
        version, _ = signal_sets[row["journey_id"]]
        if row["signal_id"] not in orphaned[row["journey_id"]] or row["version"] >= version:
            continue  # not an orphan, or written since the first read
        retraction: dict[str, Any] = {k: v for k, v in row.items() if k not in _PROVENANCE}
        rows.append(retraction | {"active": 0, "version": version} | at.provenance())
    return rows


def _active_signals(
    store: Store, columns: str, journeys: list[str], model_version: str
) -> list[dict[str, Any]]:
    # One String parameter split server-side: both backends bind it the same way (array
    # parameters they do not). A journey id containing the separator is not checked.
    return store.query(
        f"SELECT {columns} FROM journey_signals FINAL WHERE model_version = {{version:String}} "
        "AND active = 1 AND journey_id IN "
        "(SELECT arrayJoin(splitByChar('\x1e', {journeys:String})))",
        {"journeys": _SEPARATOR.join(journeys), "version": model_version},
    )
