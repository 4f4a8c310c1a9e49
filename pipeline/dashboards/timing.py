"""Time every panel, variable and alert query on a store: what the benchmarks call at scale.

from pipeline.dashboards.timing import committed_queries, time_queries
for timing in time_queries(store, committed_queries(), context):
    print(timing)
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.dashboards import DASHBOARDS, REPO_DASHBOARDS_DIR
from pipeline.dashboards.alerts import RULES
from pipeline.dashboards.macros import QueryContext, expand
from pipeline.dashboards.panels import PanelQuery, panel_queries
from pipeline.store import Store


@dataclass(frozen=True)
class Timing:
    query: str
    median_ms: float
    max_ms: float
    rows: int

    def __str__(self) -> str:
        return f"{self.query:70.70s} median {self.median_ms:7.1f} ms  max {self.max_ms:7.1f} ms"


def committed_queries(directory: Path = REPO_DASHBOARDS_DIR) -> list[PanelQuery]:
    """Every query of the committed dashboards (what Grafana provisions) and alert rules."""
    models = [json.loads((directory / f"{name}.json").read_text()) for name in DASHBOARDS]
    alerts = [PanelQuery("alerts", rule.title, "table", rule.sql) for rule in RULES]
    return [query for model in models for query in panel_queries(model)] + alerts


def time_queries(
    store: Store, queries: Iterable[PanelQuery], context: QueryContext, runs: int = 7
) -> list[Timing]:
    if runs < 1:
        raise ValueError(f"runs={runs}: expected at least one run per query")
    timings = []
    for query in queries:
        sql = expand(query.sql, context)
        spent, rows = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            rows = len(store.query(sql))
            spent.append((time.perf_counter() - start) * 1000)
        timings.append(Timing(query.name, statistics.median(spent), max(spent), rows))
    return timings
