"""What a run left in ClickHouse: row counts, when rows were stored, send-to-store latency.

chdb allows one data directory per process, so each run's directory is read in a process of
its own: `python -m benchmarks.stored CHDB_DIR DATABASE` prints one JSON object.

"Stored" is the row's `_ingested_at` (the sink stamps it when it writes the batch). For a
re-sent event the first copy counts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from benchmarks.events import SENT_AT
from pipeline.store.embedded import open_embedded

COUNTS = ("touchpoints", "dead_letters", "journeys", "journey_signals")

STORED_AT = """
SELECT toFloat64(min(_ingested_at)) AS at FROM touchpoints GROUP BY event_id
UNION ALL
SELECT toFloat64(_ingested_at) AS at FROM dead_letters
"""

# Events stamped by the fixed-rate sender: accepted ones carry the stamp in `attributes`,
# rejected ones in the raw bytes kept in dead_letters.
LATENCY = f"""
SELECT event_id AS id, any(JSONExtractFloat(attributes, '{SENT_AT}')) AS sent,
       toFloat64(min(_ingested_at)) AS stored
FROM touchpoints WHERE JSONHas(attributes, '{SENT_AT}') GROUP BY event_id
UNION ALL
SELECT JSONExtractString(raw, 'event_id') AS id,
       JSONExtractFloat(raw, 'attributes', '{SENT_AT}') AS sent,
       toFloat64(_ingested_at) AS stored
FROM dead_letters WHERE JSONHas(raw, 'attributes', '{SENT_AT}')
"""


def read_stored(chdb_dir: Path, database: str) -> dict[str, Any]:
    store = open_embedded(chdb_dir, database)
    tables = {r["name"] for r in store.query("SELECT name FROM system.tables "
                                             "WHERE database = currentDatabase()")}  # fmt: skip
    counts = {
        table: int(store.query(f"SELECT count() AS n FROM `{table}`")[0]["n"])
        for table in COUNTS
        if table in tables
    }
    if not {"touchpoints", "dead_letters"} <= tables:  # a contender that stores nothing
        return {"counts": counts, "stored_at": [], "stamped": {}}
    stored_at = [float(r["at"]) for r in store.query(STORED_AT)]
    stamped = {str(r["id"]): (float(r["sent"]), float(r["stored"])) for r in store.query(LATENCY)}
    return {"counts": counts, "stored_at": stored_at, "stamped": stamped}


def main(argv: list[str]) -> None:
    result = read_stored(Path(argv[0]), argv[1])
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
