"""Time every panel, variable and alert query on a store.

from tests.support.dashboards.queries import committed_queries
from tests.support.dashboards.timing import time_queries
for timing in time_queries(store, committed_queries(), context):
    print(timing)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.store import Store
from tests.support.dashboards.macros import QueryContext, expand
from tests.support.dashboards.queries import PanelQuery


@dataclass(frozen=True)
class Timing:
    query: str
    median_ms: float
    max_ms: float
    rows: int

    def __str__(self) -> str:
        return f"{self.query:70.70s} median {self.median_ms:7.1f} ms  max {self.max_ms:7.1f} ms"


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
