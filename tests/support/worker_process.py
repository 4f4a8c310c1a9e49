"""`journeys` commands as subprocesses with settings of their own, for end-to-end tests.

A worker is watched through its metrics page and its consumer group's offsets, never by
sleeping: it is `settled` once it has caught up on every partition, ticked its clock after
that and stored everything, re-keyed events included.
What it stored is read by another `journeys`-settings process (`dump`), since an embedded
store belongs to one process at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.kafka.local import free_port
from pipeline.settings import Settings
from tests.support.child_process import ChildProcess
from tests.support.consumer_group import wait_stored

JOURNEYS = str(Path(sys.executable).with_name("journeys"))
RUN = (JOURNEYS, "run", "--loglevel", "info")

# The stored result, without what records the path rather than the result: wall-clock
# and provenance columns, snapshot versions (a worker may reach its result in other
# event-time steps), retracted signals (see test_pipeline_worker.comparable). Two runs of
# the same input must store these row for row, however their input was batched or moved.
RESULT = {
    "journeys": "SELECT journey_id, customer_id, started_at, last_event_at, status, score,"
    " operational_score, survey_score, band, touchpoint_count, lost_points, gained_points,"
    " lost_points_beyond_front_desk, worst_department, worst_stage, score_model"
    " FROM journeys FINAL ORDER BY journey_id",
    "signals": "SELECT signal_id, journey_id, customer_id, signal, department, stage, impact,"
    " effective_at, evidence_event_ids, reason, score_model FROM journey_signals FINAL"
    " WHERE active = 1 ORDER BY signal_id",
    "touchpoints": "SELECT event_id, occurred_at, customer_id, journey_id, department, stage,"
    " channel, type, attributes FROM touchpoints FINAL ORDER BY event_id",
    "dead_letters": "SELECT reason_code, reason, department, raw, source_partition,"
    " source_offset FROM dead_letters FINAL ORDER BY source_partition, source_offset",
    "lost_points": "SELECT department, stage, sum(impact) AS points, count() AS signals"
    " FROM journey_signals FINAL WHERE active = 1 AND impact < 0"
    " GROUP BY department, stage ORDER BY department, stage",
}


DUMP = """
import json, sys
from pipeline.settings import load_settings
from pipeline.store import get_store
store = get_store(load_settings())
print(json.dumps({name: store.query(sql) for name, sql in json.loads(sys.argv[1]).items()},
                 default=str))
store.close()
"""


def worker_env(
    home: Path, bootstrap: str, topic: str, name: str, partitions: int
) -> dict[str, str]:
    """Settings for a worker of its own (consumer group, internal topics, data, web port)
    on a shared input topic; small batches and a 1 s idle clock, so a test settles fast."""
    return os.environ | {
        "JOURNEYS_DATA_DIR": str(home / name),
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "JOURNEYS_TOPIC_TOUCHPOINTS": topic,
        "JOURNEYS_TOPIC_PARTITIONS": str(partitions),
        **{f"JOURNEYS_TOPIC_{kind.upper()}": f"{topic}.{kind}.{name}"
           for kind in ("routed", "dead_letters", "scores", "alerts")},
        "JOURNEYS_WORKER_ID": f"{topic}-{name}",
        "JOURNEYS_WORKER_WEB_PORT": str(free_port()),
        # For a `journeys alerts deliver` started with these settings beside the worker.
        "JOURNEYS_ALERT_DELIVERY_METRICS_PORT": str(free_port()),
        "JOURNEYS_WORKER_BATCH_SIZE": "500",
        "JOURNEYS_CLOCK_IDLE_SECONDS": "1",
        "JOURNEYS_WORKER_SESSION_TIMEOUT_SECONDS": "8",
    }  # fmt: skip


def caught_up(metrics: dict[str, Any], partitions: int) -> bool:
    """No lag on the touchpoints topic, and every event the worker re-keyed came back
    (the lag it reports is the touchpoints topic's: a worker stopped when only that one
    was drained left the re-keyed events of its last checkpoint unread)."""
    lag = metrics["consumer_lag"]
    back = metrics["routed_in"] + metrics.get("routed_rejected", 0) >= metrics["rerouted"]
    return len(lag) == partitions and not any(lag.values()) and back


class WorkerProcess(ChildProcess):
    """One worker (`journeys run` unless `command` says otherwise), its log in `log`."""

    def __init__(self, env: dict[str, str], log: Path, command: Sequence[str] = RUN) -> None:
        self.env, self.log, self.command = env, log, list(command)
        self.partitions = int(env["JOURNEYS_TOPIC_PARTITIONS"])
        self.url = f"http://127.0.0.1:{env['JOURNEYS_WORKER_WEB_PORT']}"

    def start(self) -> None:
        self.spawn(self.command, self.env)

    def metrics(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/metrics.json", timeout=2) as reply:
                return dict(json.loads(reply.read()))
        except OSError:
            return None

    def page(self, path: str) -> tuple[int, dict[str, Any]]:
        """Status and JSON body of one of the worker's pages; an error status is an answer."""
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as reply:
                return reply.status, dict(json.loads(reply.read()))
        except urllib.error.HTTPError as error:
            return error.code, dict(json.loads(error.read()))

    def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """The first metrics that pass `check`; an AssertionError if the worker exits or
        `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.running(), self.tail()
            metrics = self.metrics()
            if metrics is not None and check(metrics):
                return metrics
            time.sleep(0.25)
        raise AssertionError(f"worker never {what}; last metrics {self.metrics()}\n{self.tail()}")

    def wait_for_page(
        self, path: str, check: Callable[[int, dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """The body of the first answer of `path` whose status and body pass `check`."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            assert self.running(), self.tail()
            with contextlib.suppress(OSError):
                last = self.page(path)
                if check(*last):
                    return last[1]
            time.sleep(0.5)
        raise AssertionError(f"{path} never {what}; last answer {last}")

    def caught_up(self, metrics: dict[str, Any]) -> bool:
        return caught_up(metrics, self.partitions)

    def settled(self, timeout: float = 120) -> dict[str, Any]:
        """Caught up on every partition, ticked after that, and everything stored, re-keyed
        events included (`wait_stored`); the metrics then.

        Not from the metrics alone: `buffered_rows` is 0 while a running checkpoint holds
        what was taken, and `routed_in >= rerouted` counts, in a restarted worker, re-keyed
        events an earlier run left on the routed topic, so it held while this run's last
        re-keyed events were unsent. The test's stop then stored their source events and
        sent them, but read them no more: journeys stored one event short.
        """
        started = time.monotonic()

        def ticked(m: dict[str, Any]) -> bool:
            return caught_up(m, self.partitions) and m["ticks"] >= self.partitions * 2

        metrics = self.wait_for(ticked, timeout, "caught up and ticked")
        wait_stored(
            self.env["JOURNEYS_KAFKA_BOOTSTRAP_SERVERS"], self._setting("worker_id"),
            self._setting("topic_touchpoints"), self._setting("topic_routed"),
            timeout - (time.monotonic() - started), alive=self.running,
            says=lambda: f"last metrics {self.metrics()}\n{self.tail()}",
        )  # fmt: skip
        return self.metrics() or metrics

    def _setting(self, name: str) -> str:
        """A setting of this worker as its environment gives it, else the default."""
        return self.env.get(f"JOURNEYS_{name.upper()}") or str(Settings.model_fields[name].default)

    def dump(self, queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        """Each query's rows from the store this worker wrote (while it is stopped: an
        embedded store belongs to one process at a time)."""
        return dump(self.env, queries)


def journeys(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    """Run a `journeys` command to its end; what it said (stderr: progress and summaries,
    then stdout), or an AssertionError with it."""
    done = subprocess.run(
        [JOURNEYS, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"journeys {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stderr + done.stdout


def dump(env: dict[str, str], queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each query's rows, read through the store those settings name, as JSON values."""
    done = subprocess.run(
        [sys.executable, "-c", DUMP, json.dumps(queries)], env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))
