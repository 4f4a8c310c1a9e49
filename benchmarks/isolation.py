"""A dead receiver does not slow the worker (`python -m benchmarks --only isolation`; also
run by `--only context`).

The same events are taken by two fresh workers in turn, on a broker of their own: one
alone, one beside `journeys alerts deliver` retrying every department's alerts to a webhook
where nothing listens. The delivery starts first and is busy before the worker starts: its
alerts topic (the worker's) already holds `BACKLOG` alerts, each tried `ATTEMPTS` times with
back-offs from 0.2 s, then dead-lettered; the worker's own alerts join them.

A worker's rate is read from its counters (`/metrics.json`, polled every 50 ms) over a
window of steady state: from its `WINDOW[0]`-th share of the events to its `WINDOW[1]`-th
(its start, its first fetches and its last partial batches left out), several seconds at
the sizes of `make bench`. The figure is the ratio beside / alone (1.0: no effect). Over the
same window the delivery's retries and dead letters (its own /metrics) and CPU seconds are
taken, and whether it was still busy at the window's end (retrying, its backlog not used
up); then the worker must catch up (everything stored and committed). A timed test of the
same once failed on a loaded machine; as a benchmark figure it is read with the machine's
load beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.broker import create_topic, preload, wait_caught_up
from benchmarks.contenders import _base_env, cpu_seconds, log_tail, running, stop, worker
from benchmarks.endtoend import BenchmarkFailed
from benchmarks.events import Message
from pipeline.kafka.local import free_port

PARTITIONS = 4
DEPARTMENTS = ("customer_service", "sales", "maintenance", "billing", "delivery", "field_service")
BACKLOG = 4_000  # alerts waiting for the delivery when the worker starts
ATTEMPTS = 6
WINDOW = (0.2, 0.9)  # the measured share of the events: steady state, start and end left out
COUNTERS = ("journeys_alerts_retried_total", "journeys_alerts_dead_lettered_total")


def delivery_isolation(bootstrap: str, messages: list[Message], workdir: Path) -> dict[str, Any]:
    alone = _worker_run(bootstrap, messages, workdir / "isolation-alone", beside=False)
    beside = _worker_run(bootstrap, messages, workdir / "isolation-beside", beside=True)
    return {
        "events": len(messages), "window": list(WINDOW), "backlog": BACKLOG,
        "alone": alone, "beside": beside,
        "ratio": beside["rate"] / alone["rate"] if alone["rate"] else float("nan"),
        "load_average": list(os.getloadavg()),
    }  # fmt: skip


def _worker_run(
    bootstrap: str, messages: list[Message], workdir: Path, *, beside: bool
) -> dict[str, Any]:
    topic = create_topic(bootstrap, PARTITIONS, prefix="bench-isolation")
    preload(bootstrap, topic, messages)
    contender = worker(bootstrap, topic, workdir)
    found: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        delivery = None
        if beside:
            alerts = contender.env["JOURNEYS_TOPIC_ALERTS"]
            _backlog(bootstrap, alerts)
            delivery = stack.enter_context(_delivery(bootstrap, alerts, workdir))
        with running(contender) as process:
            port = int(contender.env["JOURNEYS_WORKER_WEB_PORT"])
            first, last = (int(len(messages) * share) for share in WINDOW)
            start = _wait_for(port, first, process, contender, delivery)
            end = _wait_for(port, last, process, contender, delivery)
            seconds = max(end["at"] - start["at"], 1e-3)
            found["rate"] = (end["received"] - start["received"]) / seconds
            found["window_seconds"] = seconds
            found["window_events"] = end["received"] - start["received"]
            found["worker_window_cpu_seconds"] = end["worker_cpu"] - start["worker_cpu"]
            found["kept_up"] = wait_caught_up(bootstrap, topic, 120, settle=1.0,
                                              alive=lambda: process.poll() is None)  # fmt: skip
            found["worker_cpu_seconds"] = cpu_seconds(process.pid)
        if delivery is not None:
            before, after = start["delivery"], end["delivery"]
            found["delivery"] = {
                name: after.get(name, 0.0) - before.get(name, 0.0) for name in COUNTERS
            } | {
                "cpu_seconds": end["delivery_cpu"] - start["delivery_cpu"],
                "lifetime_cpu_seconds": cpu_seconds(delivery.process.pid),
                # Still at work when the window closed: retrying, the backlog not used up.
                "busy_throughout": after.get(COUNTERS[0], 0.0) > before.get(COUNTERS[0], 0.0)
                and after.get(COUNTERS[1], 0.0) < BACKLOG,
                "alive": delivery.process.poll() is None,
            }  # fmt: skip
            if not found["delivery"]["alive"]:
                raise BenchmarkFailed(f"the alert delivery died:\n{delivery.log_tail()}")
    return found


def _wait_for(
    port: int, events: int, process: subprocess.Popen[bytes], contender: Any,
    delivery: _Delivery | None,
) -> dict[str, Any]:  # fmt: skip
    """The moment the worker has taken `events` events, with its and the delivery's CPU
    seconds and the delivery's counters then."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkFailed(f"the worker died:\n{log_tail(contender)}")
        received = _received(port)
        if received >= events:
            return {
                "at": time.monotonic(), "received": received,
                "worker_cpu": cpu_seconds(process.pid),
                "delivery_cpu": cpu_seconds(delivery.process.pid) if delivery else 0.0,
                "delivery": _scrape(delivery.port) if delivery else {},
            }  # fmt: skip
        time.sleep(0.05)
    raise BenchmarkFailed(f"the worker did not take {events} events:\n{log_tail(contender)}")


def _received(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics.json", timeout=2) as got:
            return int(json.loads(got.read())["received"])
    except (OSError, ValueError, KeyError):
        return 0  # not serving yet


def _backlog(bootstrap: str, topic: str) -> None:
    """`BACKLOG` alerts of every department on the worker's alerts topic (created here,
    as the worker would, so that the delivery reads it before the worker starts)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20)
    try:
        for n in range(BACKLOG):
            department = DEPARTMENTS[n % len(DEPARTMENTS)]
            body = {"alert_id": f"promise_broken:bench-{n}:r{n}", "kind": "promise_broken",
                    "department": department, "journey_id": f"bench-{n}",
                    "customer_id": f"c-bench-{n}", "raised_at": "2026-03-02T10:00:00Z",
                    "act_by": "2026-03-03T10:00:00Z", "context": {}}  # fmt: skip
            producer.send(topic, orjson.dumps(body), key=department.encode())
        producer.flush()
    finally:
        producer.close()


class _Delivery:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])


@contextlib.contextmanager
def _delivery(bootstrap: str, alerts: str, workdir: Path) -> Iterator[_Delivery]:
    """`journeys alerts deliver` to a dead webhook for every department, started and busy."""
    workdir.mkdir(parents=True, exist_ok=True)
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    hooks = {d: {"url": down, "secret": "a-bench-secret-of-32-bytes-000000"} for d in DEPARTMENTS}
    port = free_port()
    env = _base_env() | {
        "JOURNEYS_DATA_DIR": str(workdir / "delivery"),
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "JOURNEYS_TOPIC_ALERTS": alerts,
        "JOURNEYS_TOPIC_ALERT_DEAD_LETTERS": f"{alerts}.dlq",
        "JOURNEYS_TOPIC_PARTITIONS": str(PARTITIONS),
        "JOURNEYS_ALERT_DELIVERY_GROUP": f"{alerts}-delivery",
        "JOURNEYS_ALERT_WEBHOOKS": json.dumps(hooks),
        "JOURNEYS_ALERT_DELIVERY_ATTEMPTS": str(ATTEMPTS),
        "JOURNEYS_ALERT_DELIVERY_BACKOFF_SECONDS": "0.2",
        "JOURNEYS_ALERT_DELIVERY_BACKOFF_MAX_SECONDS": "2",
        "JOURNEYS_ALERT_DELIVERY_METRICS_PORT": str(port),
    }
    argv = [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())",
            "alerts", "deliver"]  # fmt: skip
    log = workdir / "delivery.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    delivery = _Delivery(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while not _scrape(port).get("journeys_alerts_retried_total"):  # busy: retrying
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkFailed(f"the alert delivery did not start:\n{delivery.log_tail()}")
            time.sleep(0.2)
        yield delivery
    finally:
        stop(process, grace=30)


def _scrape(port: int) -> dict[str, float]:
    """The delivery's counters summed over departments (empty while it does not serve)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as got:
            text = got.read().decode()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found
