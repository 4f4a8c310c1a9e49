"""A dead receiver does not slow the worker (`python -m benchmarks --only context`).

The same events are taken by two fresh workers in turn, on the context section's broker:
one alone, one beside `journeys alerts deliver` retrying every department's alerts to a
webhook where nothing listens. The delivery starts first and is busy before the worker
starts: its alerts topic (the worker's) already holds `BACKLOG` alerts, each tried
`ATTEMPTS` times with back-offs from 0.2 s, then dead-lettered; the worker's own alerts
join them. Each worker's rate is taken from its counters (`/metrics.json`, polled every
50 ms): events taken and processed a second, from its first event to its last, then it
must catch up (everything stored and committed). The figure is the ratio beside / alone
(1.0: no effect); the delivery's retries and dead letters during the worker's run are read
from its own /metrics page, to show it was busy. A timed test of the same once failed on a
loaded machine; as a benchmark figure it is read with the machine's load beside it.
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
BACKLOG = 2_000  # alerts waiting for the delivery when the worker starts
ATTEMPTS = 6


def delivery_isolation(bootstrap: str, messages: list[Message], workdir: Path) -> dict[str, Any]:
    alone = _worker_run(bootstrap, messages, workdir / "isolation-alone", beside=False)
    beside = _worker_run(bootstrap, messages, workdir / "isolation-beside", beside=True)
    return {
        "events": len(messages), "alone": alone, "beside": beside,
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
            before = _scrape(delivery.port)
        with running(contender) as process:
            port = int(contender.env["JOURNEYS_WORKER_WEB_PORT"])
            found["rate"] = _rate(port, len(messages), process, contender)
            found["kept_up"] = wait_caught_up(bootstrap, topic, 120, settle=1.0,
                                              alive=lambda: process.poll() is None)  # fmt: skip
            found["worker_cpu_seconds"] = cpu_seconds(process.pid)
        if delivery is not None:
            after = _scrape(delivery.port)
            found["delivery"] = {
                name: after.get(name, 0.0) - before.get(name, 0.0)
                for name in ("journeys_alerts_retried_total",
                             "journeys_alerts_dead_lettered_total")
            } | {"cpu_seconds": cpu_seconds(delivery.process.pid),
                 "alive": delivery.process.poll() is None}  # fmt: skip
            if not found["delivery"]["alive"]:
                raise BenchmarkFailed(f"the alert delivery died:\n{delivery.log_tail()}")
    return found


def _rate(port: int, events: int, process: subprocess.Popen[bytes], contender: Any) -> float:
    """Events taken a second, from the worker's first event seen to its `events`-th."""
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkFailed(f"the worker died:\n{log_tail(contender)}")
        received = _received(port)
        now = time.monotonic()
        if received and first is None:
            first = (now, received)
        if first is not None and received >= events:
            return (received - first[1]) / max(now - first[0], 1e-3)
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
