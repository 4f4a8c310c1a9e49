"""The worker and the report in server mode, on the real broker and the real engine.

The same simulated month (late, out-of-order, duplicate and malformed messages included)
is read by two workers in groups of their own: one on the embedded store (chdb in its
process), one in server mode (clickhouse-connect to tests/support/clickhouse_http.py).
What the server-mode worker stores, and the report written from it, must equal the
embedded run's, row for row.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.clickhouse_process import ClickHouseProcess
from tests.support.worker_process import RESULT, WorkerProcess, dump, journeys, worker_env

pytestmark = pytest.mark.integration
PARTITIONS = 3


@dataclass
class Run:
    env: dict[str, str]
    final: dict[str, Any]  # the worker's counters once settled
    exit_code: int
    stored: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def runs(
    bootstrap_servers: str,
    clickhouse_server: ClickHouseProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Run]:
    """One simulated month, read by an embedded and a server-mode worker side by side."""
    home = tmp_path_factory.mktemp("server_worker")
    topic = f"t_server_worker_{uuid.uuid4().hex[:8]}"
    embedded = worker_env(home, bootstrap_servers, topic, "embedded", PARTITIONS)
    server = worker_env(home, bootstrap_servers, topic, "server", PARTITIONS)
    server |= clickhouse_server.settings_env(f"journeys_{uuid.uuid4().hex[:8]}")
    for env in (embedded, server):  # health samples each second: the store used from threads
        env["JOURNEYS_WORKER_HEALTH_SAMPLE_SECONDS"] = "1"
    # A month that ended weeks ago: every deadline in it is due before the workers run, so
    # the two runs, a few seconds apart, see the same deadlines fire.
    start = (datetime.now(UTC) - timedelta(days=60)).replace(minute=0, second=0, microsecond=0)
    journeys("simulate", "--customers", "150", "--days", "30", "--seed", "16",
             "--start", start.isoformat(), env=embedded)  # fmt: skip
    workers = {
        "embedded": WorkerProcess(embedded, home / "embedded.log"),
        "server": WorkerProcess(server, home / "server.log"),
    }
    finals, codes = {}, {}
    try:
        for worker in workers.values():
            worker.start()
        for name, worker in workers.items():
            finals[name] = worker.settled()
    finally:
        for name, worker in workers.items():
            codes[name] = worker.stop()
    return {
        name: Run(worker.env, finals[name], codes[name], dump(worker.env, RESULT))
        for name, worker in workers.items()
    }


def test_a_server_mode_worker_stores_what_the_embedded_worker_stores(
    runs: dict[str, Run],
) -> None:
    embedded, server = runs["embedded"], runs["server"]
    assert (server.exit_code, embedded.exit_code) == (0, 0)  # a clean stop on both paths
    counters = ("received", "accepted", "rejected", "duplicates")
    assert {c: server.final[c] for c in counters} == {c: embedded.final[c] for c in counters}
    assert server.final["rejected"] > 0 and server.final["duplicates"] > 0  # faults included
    assert server.final["sink_failures"] == 0
    for table, rows in embedded.stored.items():
        assert rows, f"the embedded run stored no {table}"
        assert len(server.stored[table]) == len(rows), table
        differing = [(a, b) for a, b in zip(rows, server.stored[table], strict=True) if a != b]
        assert not differing, f"{table}: {differing[:3]}"
    signals = {row["signal"] for row in server.stored["signals"]}
    assert {"promise_broken", "repeat_contact"} <= signals


def test_the_report_in_server_mode_equals_the_embedded_report(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    pages, summaries = {}, {}
    for name, run in runs.items():
        page = tmp_path / f"{name}.html"
        summaries[name] = journeys("report", "--output", str(page), env=run.env)
        pages[name] = page.read_text()
    assert "word-of-mouth" in summaries["server"].lower(), summaries["server"]
    written = re.compile(r"Report written to .*|generated \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    # Which alerts a live worker raises depends on how far each partition's event-time clock
    # moved between events (wall-clock ticks), so two runs a few seconds apart may differ by
    # a "promise due soon": the loop-closure figures are compared only for being there.
    loop = re.compile(r"alerts acted on in time.*|<section><h2>Did the loop close\?.*?</section>")
    for name in runs:
        assert loop.search(summaries[name]) and loop.search(pages[name]), name
    server_summary, embedded_summary = (loop.sub("", written.sub("", summaries[name]))
                                        for name in ("server", "embedded"))  # fmt: skip
    assert server_summary == embedded_summary
    assert loop.sub("", written.sub("", pages["server"])) == loop.sub(
        "", written.sub("", pages["embedded"])
    )
