"""Offline rows are the worker's rows: what reads the tables is tested on what the worker writes.

The simulator's rows were once built by a second, simpler path: versions from a counter,
deadlines fired in one jump to the end of the period, journeys that a late event merged
into another dropped instead of deleted. The report was tested on rows no worker writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.journey import load_score_model
from pipeline.stream.offline import offline_rows
from pipeline.stream.rows import Row

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(days=30)

PROBE = """
import json, sys
import pipeline.stream.offline
print(json.dumps(sorted({m.split(".")[0] if not m.startswith("pipeline.") else m
                         for m in sys.modules})))
"""


def message(event_id: str, days: float, journey_id: str | None = None, **fields: Any) -> bytes:
    event = {
        "event_id": event_id, "occurred_at": (T0 + timedelta(days=days)).isoformat(),
        "customer_id": "c1", "department": "customer_service", "type": "contact",
        "channel": "phone", **fields,
    }  # fmt: skip
    if journey_id:
        event["journey_id"] = journey_id
    return orjson.dumps(event)


def rows(*values: bytes, batch: int = 500) -> dict[str, list[Row]]:
    taken = [(value, UNTIL) for value in values]
    return offline_rows(taken, UNTIL, load_score_model(), batch=batch)


def final(journeys: list[Row]) -> dict[str, Row]:
    """Each journey's row of the highest version: what `journeys FINAL` reads."""
    latest: dict[str, Row] = {}
    for row in journeys:
        if row["version"] >= latest.get(row["journey_id"], row)["version"]:
            latest[row["journey_id"]] = row
    return latest


def test_the_offline_path_loads_no_kafka_faust_clickhouse_or_simulator_module() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert not loaded & {"faust", "mode", "aiokafka", "kafka", "chdb", "clickhouse_connect"}
    assert not {m for m in loaded if m.startswith(("pipeline.simulate", "pipeline.dashboards"))}


def test_a_journey_merged_by_a_late_event_gets_a_deleting_row() -> None:
    # Twenty days apart: two journeys (the gap is 14 days), until an event in between
    # arrives late and makes them one; the second journey's id then ceases to exist.
    written = rows(message("e1", 0), message("e2", 20), message("late", 10), batch=2)
    latest = final(written["journeys"])
    deleted = [row for row in latest.values() if row.get("is_deleted")]
    assert len(latest) == 2 and len(deleted) == 1
    assert deleted[0]["status"] == "retired"
    kept = next(row for row in latest.values() if not row.get("is_deleted"))
    assert kept["touchpoint_count"] == 3


def test_deadlines_fire_one_at_a_time_and_versions_rise() -> None:
    promise = {"promise_id": "p1", "description": "call back", "due_at": T0 + timedelta(days=1)}
    written = rows(message("e1", 0, "J1", type="promise_made", attributes=promise))
    journey = written["journeys"]
    versions = [row["version"] for row in journey]
    assert versions == sorted(set(versions))
    # The last step is the inactivity gap (14 days after the last event), not `until`:
    # the clock steps to just past each deadline, as the worker's catch-up does.
    assert journey[-1]["status"] == "closed"
    assert journey[-1]["updated_at"] == T0 + timedelta(days=14, microseconds=1)
    broken = [s for s in written["journey_signals"] if s["signal"] == "promise_broken"]
    assert [s["effective_at"] for s in broken] == [T0 + timedelta(days=1)]
