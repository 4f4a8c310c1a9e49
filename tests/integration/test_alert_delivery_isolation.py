"""A department's receiver that is down does not slow the worker: the same month of traffic
is scored by a worker alone and by a worker whose alerts `journeys alerts deliver` is busy
retrying to a dead receiver, and the second worker's throughput stays within a generous
tolerance of the first's (the machine is shared; the delivery shares its cores too). The
dead receiver's alerts end in the dead-letter topic, and the delivery exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from pipeline.kafka.local import free_port
from pipeline.simulate import SimulationConfig, default_start, simulate
from tests.support.worker_process import JOURNEYS, WorkerProcess, caught_up, worker_env

PARTITIONS = 2
TOLERANCE = 0.5  # the worker beside a busy delivery keeps at least half the throughput
DEPARTMENTS = ("customer_service", "sales", "maintenance", "billing", "delivery")


def month_of_traffic(bootstrap: str, topic: str) -> int:
    now = datetime.now(UTC)
    config = SimulationConfig(customers=600, days=20, start=default_start(20, now))
    deliveries = [d for d in simulate(config)[0] if d.sent_at <= now + timedelta(days=1)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for delivery in deliveries:
        producer.send(topic, key=delivery.key, value=delivery.value)
    producer.flush()
    producer.close()
    return len(deliveries)


def throughput(worker: WorkerProcess, events: int) -> float:
    """Events per second from the first event taken to every one stored."""
    first = worker.wait_for(lambda m: m["received"] > 0, 120, "took an event")
    started, taken = time.monotonic(), first["received"]
    worker.wait_for(
        lambda m: m["received"] >= events and caught_up(m, PARTITIONS)
        and m["buffered_rows"] == 0,
        600, "stored everything",
    )  # fmt: skip
    return (events - taken) / (time.monotonic() - started)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


def test_a_dead_receiver_does_not_slow_the_worker(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    events = month_of_traffic(bootstrap_servers, unique_name)
    rates: dict[str, float] = {}
    cpu = 0.0
    for name in ("alone", "beside"):
        env = worker_env(tmp_path, bootstrap_servers, unique_name, name, PARTITIONS)
        worker = WorkerProcess(env, tmp_path / f"{name}.log")
        delivery: subprocess.Popen[bytes] | None = None
        if name == "beside":
            down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
            hooks = {d: {"url": down, "secret": "a-secret-of-16-bytes+"} for d in DEPARTMENTS}
            delivery_env = env | {
                "JOURNEYS_ALERT_WEBHOOKS": json.dumps(hooks),
                "JOURNEYS_TOPIC_ALERT_DEAD_LETTERS": f"{unique_name}.alerts.dlq",
                "JOURNEYS_ALERT_DELIVERY_GROUP": f"{unique_name}-delivery",
                "JOURNEYS_ALERT_DELIVERY_ATTEMPTS": "3",
                "JOURNEYS_ALERT_DELIVERY_BACKOFF_SECONDS": "0.5",
            }
            log_path = tmp_path / "delivery.log"
            with log_path.open("wb") as log:
                delivery = subprocess.Popen([JOURNEYS, "alerts", "deliver"], env=delivery_env,
                                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            # Started and connected first: its start-up is not what is measured.
            deadline = time.monotonic() + 60
            while "delivering" not in log_path.read_text() and time.monotonic() < deadline:
                assert delivery.poll() is None, log_path.read_text()
                time.sleep(0.2)
        worker.start()
        try:
            rates[name] = throughput(worker, events)
        finally:
            assert worker.stop() == 0, worker.tail()
        if delivery is not None:
            alerts = count(bootstrap_servers, env["JOURNEYS_TOPIC_ALERTS"])
            dead = f"{unique_name}.alerts.dlq"
            deadline = time.monotonic() + 120
            while count(bootstrap_servers, dead) < alerts and time.monotonic() < deadline:
                time.sleep(1)
            cpu = cpu_seconds(delivery.pid)
            delivery.send_signal(signal.SIGTERM)
            assert delivery.wait(30) == 0, (tmp_path / "delivery.log").read_text()[-3000:]
            assert alerts > 50 and count(bootstrap_servers, dead) == alerts
    print(f"worker events/s alone {rates['alone']:.0f}, beside a dead receiver "
          f"{rates['beside']:.0f} ({events} events; delivery CPU {cpu:.1f} s)")  # fmt: skip
    assert rates["beside"] >= TOLERANCE * rates["alone"], rates
