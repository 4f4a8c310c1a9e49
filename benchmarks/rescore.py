"""`journeys rescore`'s bulk path: stored touchpoints scored again, events per second.

    python -m benchmarks.rescore DIR EVENTS   # prints the figures as JSON

A simulated month is scored once by the offline scorer (the worker's validator and engine)
into chdb under DIR; its touchpoints are then copied with renamed customers, journeys and
events until the table holds about EVENTS touchpoints. The rescore runs as the command
runs it (two spawned scoring processes, the main one reading and inserting through chdb),
with a model of its own version, and the rate is its touchpoints over its whole run:
counting, reading, scoring, inserting journeys and signals (and the views they feed),
and the progress ledger.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE_CUSTOMERS = 1000  # ~10,000 touchpoints, scored offline once, then copied
WORKERS = 2


def prepare(directory: Path, events: int) -> Any:
    from pipeline.journey import load_score_model
    from pipeline.simulate import SimulationConfig, simulate
    from pipeline.store import apply_migrations
    from pipeline.store.embedded import open_embedded
    from pipeline.stream.offline import offline_rows, write_rows

    end = datetime(2026, 6, 1, tzinfo=UTC)
    config = SimulationConfig(customers=BASE_CUSTOMERS, days=30, start=end - timedelta(days=30))
    store = open_embedded(directory, "bench_rescore")
    apply_migrations(store)
    messages = ((delivery.value, end) for delivery in simulate(config)[0])
    write_rows(store, offline_rows(messages, end, load_score_model()))
    base = int(store.query("SELECT count() AS n FROM touchpoints")[0]["n"])
    copies = max(events // max(base, 1) - 1, 0)
    if copies:
        # Copy k renames customer C to C~k, its derived journey ids (C@...) alike, and
        # every event id, so each copy is a company of its own.
        store.execute(f"""
            INSERT INTO touchpoints (event_id, occurred_at, customer_id, journey_id,
                department, stage, channel, type, attributes, schema_version, _topic,
                _partition, _offset, _ingested_at)
            SELECT concat(event_id, '~', toString(k)), occurred_at,
                concat(customer_id, '~', toString(k)),
                if(startsWith(journey_id, concat(customer_id, '@')),
                   concat(customer_id, '~', toString(k),
                          substring(journey_id, length(customer_id) + 1)),
                   concat(journey_id, '~', toString(k))),
                department, stage, channel, type, attributes, schema_version, _topic,
                _partition, _offset, _ingested_at
            FROM touchpoints ARRAY JOIN range(1, {copies + 1}) AS k
            WHERE journey_id != ''""")
    return store


def measure(directory: Path, events: int) -> dict[str, Any]:
    from pipeline.journey import DEFAULT_MODEL_PATH
    from pipeline.rescore import RescorePlan, rescore

    store = prepare(directory, events)
    stored = int(store.query("SELECT count() AS n FROM touchpoints WHERE journey_id != ''")[0]["n"])
    toml = DEFAULT_MODEL_PATH.read_text().replace('version = "v1"', 'version = "bench"')
    cpu = os.times()
    started = time.monotonic()
    outcome = rescore(store, RescorePlan(toml, workers=WORKERS))
    seconds = time.monotonic() - started
    after = os.times()
    main_cpu = (after.user - cpu.user) + (after.system - cpu.system)
    workers_cpu = (after.children_user - cpu.children_user) + (
        after.children_system - cpu.children_system
    )
    store.close()
    return {
        "touchpoints": stored,
        "events": outcome.events,
        "journeys": outcome.journeys,
        "signals": outcome.signals,
        "shards": outcome.shards,
        "workers": WORKERS,
        "seconds": seconds,
        "rate": outcome.events / seconds if seconds else 0.0,
        # CPU per event: the main process (chdb reads and inserts, the views) and the
        # scoring processes (parse, engine, rows)
        "main_cpu_us": 1e6 * main_cpu / max(outcome.events, 1),
        "workers_cpu_us": 1e6 * workers_cpu / max(outcome.events, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]), int(sys.argv[2]))))
