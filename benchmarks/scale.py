"""Scale-out: the aggregate rate of one, two and three worker processes in one group.

Several workers share one store only in server mode: chdb, the embedded engine, allows one
process per data directory, so embedded workers cannot share a database. The store is
the test suite's ClickHouse HTTP endpoint (`tests/support/clickhouse_http.py`): one
process, one chdb session, statements one at a time, on the same machine. Each run:

1. a fresh topic of `PARTITIONS` partitions (divisible by 1, 2 and 3) holding all the
   simulated messages, sent before any worker starts (the sender does not compete for the
   CPU), and a fresh, migrated database (migrated once up front: workers that start
   together would each apply the pending migrations);
2. `workers` worker processes started together in one consumer group, each with its own
   data directory (RocksDB state) and web port;
3. the group's committed offsets polled from the moment it is stable with every member
   assigned until they reach the end: the rate is what was left then over the time to the
   last commit (the joins and their rebalances are not in it; no figure when more than
   half went before). Events are stored when committed, which the worker does only after
   ClickHouse acknowledged their rows; commits come in steps (a checkpoint takes whatever
   was taken in while the previous one ran, so with a backlog they grow to hundreds of
   thousands of rows), so only the whole span says how fast the backlog was stored.

CPU seconds of the workers and of the endpoint from then to the last commit give the cost
of an event in a worker and of a stored row in the engine. Then one 10,000-row insert into
`touchpoints` (its materialized views included) through clickhouse-connect gives the
insert figure. Everything shares the machine's cores: the broker, the endpoint, the
workers and this process.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient

from benchmarks import contenders
from benchmarks.broker import LagProbe, create_topic, preload
from benchmarks.contenders import Contender, cpu_seconds, log_tail
from benchmarks.endtoend import BenchmarkFailed
from benchmarks.events import Message
from pipeline.store import apply_migrations
from pipeline.store.server import ServerStore
from tests.support.clickhouse_process import ClickHouseProcess

PARTITIONS = 6
WORKERS = (1, 2, 3)
INSERT_ROWS = 10_000


@contextlib.contextmanager
def clickhouse_endpoint(home: Path) -> Iterator[ClickHouseProcess]:
    """The test suite's ClickHouse HTTP endpoint on chdb, in a process of its own."""
    home.mkdir(parents=True, exist_ok=True)
    server = ClickHouseProcess(home)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scale(
    bootstrap: str, server: ClickHouseProcess, messages: list[Message], workdir: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    runs: dict[str, Any] = {}
    for workers in WORKERS:
        say(f"scale: {workers} worker process(es), {len(messages):,} events, server mode")
        runs[str(workers)] = run(bootstrap, server, messages, workdir / f"scale-{workers}",
                                 workers)  # fmt: skip
    say(f"scale: one {INSERT_ROWS:,}-row insert into touchpoints through the endpoint")
    return {
        "partitions": PARTITIONS,
        "store": "server mode: the test ClickHouse HTTP endpoint on chdb (one process)",
        "runs": runs,
        "insert": insert_figure(server, runs[str(WORKERS[-1])]["database"]),
    }


def run(
    bootstrap: str, server: ClickHouseProcess, messages: list[Message], workdir: Path,
    workers: int,
) -> dict[str, Any]:  # fmt: skip
    topic = create_topic(bootstrap, PARTITIONS, prefix="scale")
    database = f"scale_{uuid.uuid4().hex[:8]}"
    store = ServerStore(server.url, server.user, server.password, database)
    try:
        apply_migrations(store)
    finally:
        store.close()
    count = preload(bootstrap, topic, messages)
    group = f"bench-scale-{uuid.uuid4().hex[:6]}"
    members = [member(bootstrap, topic, workdir / f"worker-{n}", group, server, database)
               for n in range(1, workers + 1)]  # fmt: skip
    probe = LagProbe(bootstrap)
    with contextlib.ExitStack() as running:
        running.callback(probe.close)
        started = time.monotonic()
        processes = [running.enter_context(contenders.running(m)) for m in members]
        alive = lambda: all(p.poll() is None for p in processes)  # noqa: E731
        if not stable(bootstrap, group, workers, 180, alive):
            raise BenchmarkFailed(f"{workers} workers never formed a stable group:\n"
                                  + "\n".join(log_tail(m) for m in members))  # fmt: skip
        cpu = {"workers": sum(cpu_seconds(p.pid) for p in processes),
               "endpoint": endpoint_cpu(server)}  # fmt: skip
        progress = wait_committed(probe, topic, count, 900, alive)
        if not progress or progress[-1][1] < count:
            raise BenchmarkFailed(f"{workers} workers committed {progress[-1:]} of {count}:\n"
                                  + "\n".join(log_tail(m, 30) for m in members))  # fmt: skip
        cpu = {"workers": sum(cpu_seconds(p.pid) for p in processes) - cpu["workers"],
               "endpoint": endpoint_cpu(server) - cpu["endpoint"]}  # fmt: skip
    found = summarise(progress, count, started, cpu, stored(server, database), workers)
    return found | {"database": database}


def member(
    bootstrap: str, topic: str, workdir: Path, group: str, server: ClickHouseProcess,
    database: str,
) -> Contender:  # fmt: skip
    """The product's worker (`contenders.worker`) as one member of `group`, in server mode."""
    worker = contenders.worker(bootstrap, topic, workdir)
    worker.env |= server.settings_env(database) | {
        "JOURNEYS_WORKER_ID": group,
        # The state table's changelog and the routed topic must match the input's partitions.
        "JOURNEYS_TOPIC_PARTITIONS": str(PARTITIONS),
    }
    return worker


def stable(bootstrap: str, group: str, members: int, timeout: float,
           alive: Callable[[], bool]) -> bool:  # fmt: skip
    """Wait until the group is stable with `members` members, each of them assigned."""
    logging.getLogger("kafka.admin").setLevel(logging.ERROR)  # Faust's metadata: no news
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and alive():
            try:
                info = admin.describe_groups([group])[group]
            except Exception:  # the coordinator is not there yet
                info = {}
            if info.get("group_state") == "Stable" and len(info["members"]) == members:
                return True
            time.sleep(0.5)
    finally:
        admin.close()
    return False


def wait_committed(
    probe: LagProbe, topic: str, total: int, timeout: float, alive: Callable[[], bool]
) -> list[tuple[float, int]]:
    """(monotonic time, messages of `topic` committed) until all `total` are (or the
    timeout, or a worker's death)."""
    progress: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        reading = probe.read(topic)
        if reading is not None:
            progress.append((time.monotonic(), reading[0]))
            if reading[0] >= total:
                break
        time.sleep(0.25)
    return progress


def summarise(
    progress: list[tuple[float, int]], count: int, started: float, cpu: dict[str, float],
    rows: dict[str, int], workers: int,
) -> dict[str, Any]:  # fmt: skip
    """The rate from the moment the group was stable to the last commit (see the module)."""
    done_when_stable = progress[0][1]  # read as the group became stable
    left = count - done_when_stable
    seconds = progress[-1][0] - progress[0][0]
    # No figure when most of it went before every worker had joined.
    rate = left / seconds if left >= count / 2 and seconds > 0 else math.nan
    rows_in_window = sum(rows.values()) * left / count  # rows an event stores, on average
    return {
        "workers": workers,
        "events": count,
        "committed_before_stable": done_when_stable,
        "stable_seconds": progress[0][0] - started,
        "measured_seconds": seconds,
        "rate": rate,
        "rate_per_worker": rate / workers,
        "wall_rate": count / (progress[-1][0] - started),  # from the first start, joins included
        "worker_cpu_us_per_event": cpu["workers"] / max(left, 1) * 1e6,
        "endpoint_cpu_us_per_row": cpu["endpoint"] / max(rows_in_window, 1) * 1e6,
        "rows_per_event": sum(rows.values()) / count,
        "rows": rows,
    }


def endpoint_cpu(server: ClickHouseProcess) -> float:
    assert server.process is not None
    return cpu_seconds(server.process.pid)


def stored(server: ClickHouseProcess, database: str) -> dict[str, int]:
    store = ServerStore(server.url, server.user, server.password, database)
    try:
        return {
            table: int(store.query(f"SELECT count() AS n FROM `{table}`")[0]["n"])
            for table in ("touchpoints", "journeys", "journey_signals", "dead_letters")
        }
    finally:
        store.close()


def insert_figure(server: ClickHouseProcess, source_database: str) -> dict[str, Any]:
    """One INSERT_ROWS-row touchpoints insert (rows a run stored) into a fresh database,
    through clickhouse-connect and the endpoint, its materialized views included."""
    source = ServerStore(server.url, server.user, server.password, source_database)
    target_name = f"scale_insert_{uuid.uuid4().hex[:8]}"
    target = ServerStore(server.url, server.user, server.password, target_name)
    try:
        apply_migrations(target)
        rows = source.query(f"SELECT * FROM touchpoints LIMIT {INSERT_ROWS}")
        started = time.monotonic()
        target.insert("touchpoints", rows, dedup_token=f"bench-{uuid.uuid4().hex}")
        seconds = time.monotonic() - started
    finally:
        source.close()
        target.execute(f"DROP DATABASE IF EXISTS `{target_name}`")
        target.close()
    return {"rows": len(rows), "seconds": seconds, "rows_per_second": len(rows) / seconds}
