"""Dashboard panel queries at production size: every panel's SQL, expanded, timed on chdb.

Reads the committed dashboards under `dashboards/` (what Grafana provisions) and the alert
rules, expands Grafana's variables and the ClickHouse plugin's macros with the dashboards'
own expander for each dashboard's default time range, and times each query `repeats` times
after one warm-up run (Grafana refreshes the same queries, so caches are warm in use).

Run in its own process (chdb: one data directory per process):
`python -m benchmarks.queries DIR TOUCHPOINTS JOURNEYS REPEATS`; prints one JSON object.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks import dashboard_data, stats
from pipeline.store import Store, apply_migrations
from pipeline.store.embedded import open_embedded

POINTS = 1000  # Grafana asks for about one point per pixel of a panel's width
RANGE = re.compile(r"^now-(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def panel_queries() -> list[Any]:
    from pipeline.dashboards import DASHBOARDS, REPO_DASHBOARDS_DIR
    from pipeline.dashboards.alerts import RULES
    from tests.support.dashboards.queries import PanelQuery
    from tests.support.dashboards.queries import panel_queries as queries_of

    found = []
    for name in DASHBOARDS:
        model = orjson.loads((REPO_DASHBOARDS_DIR / f"{name}.json").read_bytes())
        found += [(q, model.get("time", {}).get("from", "now-6h")) for q in queries_of(model)]
    found += [(PanelQuery("alerts", r.title, "table", r.sql), "now-1h") for r in RULES]
    return found


def context(time_from: str, anchor: datetime, variables: dict[str, str]) -> Any:
    from tests.support.dashboards.macros import QueryContext

    match = RANGE.match(time_from)
    span = timedelta(**{UNITS[match.group(2)]: int(match.group(1))}) if match else timedelta(1)
    interval = timedelta(seconds=max(int(span.total_seconds()) // POINTS, 1))
    return QueryContext(anchor - span, anchor, interval, variables)


def generate(store: Store, anchor: datetime, scale: dashboard_data.Scale) -> list[dict]:
    steps = []
    for what, sql in dashboard_data.statements(anchor, scale):
        started = time.monotonic()
        store.execute(sql)
        steps.append({"what": what, "seconds": time.monotonic() - started})
    return steps


def refresh(store: Store) -> list[dict]:
    """Refresh the scheduled aggregates one by one, timed: ClickHouse runs each of these on its
    own every one to five minutes in production, so their cost is part of the answer."""
    from pipeline.store.refresh import REFRESHED_VIEWS

    steps = []
    for view in REFRESHED_VIEWS:
        started = time.monotonic()
        store.execute(f"SYSTEM REFRESH VIEW {view}")
        store.execute(f"SYSTEM WAIT VIEW {view}")
        steps.append({"view": view, "seconds": time.monotonic() - started})
    return steps


def settle(store: Store, timeout: float = 120.0) -> int:
    """Wait (bounded) for background merges to go quiet; returns the active parts left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        merging = store.query("SELECT count() AS n FROM system.merges")[0]["n"]
        if int(merging) == 0:
            break
        time.sleep(1)
    parts = store.query(
        "SELECT count() AS n FROM system.parts WHERE active AND database = currentDatabase()"
    )
    return int(parts[0]["n"])


def variables(store: Store) -> dict[str, str]:
    worst = store.query(
        "SELECT journey_id, customer_id FROM journeys FINAL "
        "ORDER BY lost_points DESC, journey_id LIMIT 1"
    )[0]
    return {"department": "maintenance", "customer": str(worst["customer_id"]),
            "journey": str(worst["journey_id"]), "due_within_hours": "24",
            "model": "v1"}  # fmt: skip


def time_query(store: Store, sql: str, repeats: int) -> dict[str, Any]:
    rows = len(store.query(sql))  # warm-up, and the result size
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        store.query(sql)
        seconds.append(time.perf_counter() - started)
    return {"rows": rows} | stats.spread(seconds).as_dict()


def run(directory: Path, scale: dashboard_data.Scale, repeats: int) -> dict[str, Any]:
    from tests.support.dashboards.macros import expand

    store = open_embedded(directory, "journeys")
    apply_migrations(store)
    anchor = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()
    steps = generate(store, anchor, scale)
    generated = time.monotonic() - started
    parts = settle(store)
    refreshed = refresh(store)  # the scheduled aggregates (0003-0005) see the new data
    values = variables(store)
    results = []
    for query, time_from in panel_queries():
        sql = expand(query.sql, context(time_from, anchor, values))
        results.append({"dashboard": query.dashboard, "panel": query.title,
                        "type": query.panel_type} | time_query(store, sql, repeats))  # fmt: skip
    counts = {t: int(store.query(f"SELECT count() AS n FROM {t}")[0]["n"])
              for t in ("touchpoints", "journeys", "journey_signals", "dead_letters")}  # fmt: skip
    return {"generate_seconds": generated, "steps": steps, "active_parts": parts,
            "refresh": refreshed, "refresh_seconds": sum(r["seconds"] for r in refreshed),
            "rows": counts, "queries": results}  # fmt: skip


def main(argv: list[str]) -> None:
    scale = dashboard_data.Scale(touchpoints=int(argv[1]), journeys=int(argv[2]))
    result = run(Path(argv[0]), scale, int(argv[3]))
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
