"""A department's receiver that hangs does not hold up the worker: while `journeys alerts
deliver` waits on a receiver that accepts connections and never answers, the worker scores a
whole month of traffic and stores every event, and no alert has been delivered or
dead-lettered by then (nothing on the event path waited for one). The delivery then stops on
SIGTERM with requests in flight (exit 0), and a delivery started afterwards sends those alerts
again, so at least once holds across the restart: against a receiver that is down they all end
in the dead-letter topic. How much a busy delivery slows the worker on a shared machine is a
benchmark figure (`delivery_isolation_ratio`), not a timed assertion here."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from pipeline.kafka.local import free_port
from pipeline.simulate import SimulationConfig, default_start, simulate
from tests.support.worker_process import JOURNEYS, WorkerProcess, worker_env

PARTITIONS = 2
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


def count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


class HangingReceiver:
    """A TCP server that accepts every connection and never answers: each webhook request
    stays in flight until the sender gives up or stops."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed at the end of the test
            while True:
                self.held.append(self.server.accept()[0])

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


def start_delivery(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        delivery = subprocess.Popen([JOURNEYS, "alerts", "deliver"], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while "delivering" not in log_path.read_text() and time.monotonic() < deadline:
        assert delivery.poll() is None, log_path.read_text()
        time.sleep(0.2)
    return delivery


def test_a_hanging_receiver_does_not_hold_up_the_worker(
    bootstrap_servers: str, unique_name: str, tmp_path: Path
) -> None:
    events = month_of_traffic(bootstrap_servers, unique_name)
    env = worker_env(tmp_path, bootstrap_servers, unique_name, "worker", PARTITIONS)
    dead_letters = f"{unique_name}.alerts.dlq"
    receiver = HangingReceiver()
    try:
        hanging = f"http://127.0.0.1:{receiver.port}/hook"
        delivery_env = env | {
            "JOURNEYS_ALERT_WEBHOOKS": json.dumps(
                {d: {"url": hanging, "secret": "a-secret-of-16-bytes+"} for d in DEPARTMENTS}
            ),
            "JOURNEYS_TOPIC_ALERT_DEAD_LETTERS": dead_letters,
            "JOURNEYS_ALERT_DELIVERY_GROUP": f"{unique_name}-delivery",
            "JOURNEYS_ALERT_DELIVERY_ATTEMPTS": "3",
            "JOURNEYS_ALERT_DELIVERY_BACKOFF_SECONDS": "0.5",
            "JOURNEYS_ALERT_DELIVERY_TIMEOUT_SECONDS": "300",  # the longest wait allowed
            "JOURNEYS_WORKER_STOP_SECONDS": "2",
        }
        delivery = start_delivery(delivery_env, tmp_path / "delivery.log")
        worker = WorkerProcess(env, tmp_path / "worker.log")
        worker.start()
        try:
            metrics = worker.settled(timeout=600)
        finally:
            assert worker.stop() == 0, worker.tail()
        assert metrics["received"] >= events
        alerts = count(bootstrap_servers, env["JOURNEYS_TOPIC_ALERTS"])
        assert alerts > 50
        assert receiver.held, "the delivery never reached the receiver"
        assert count(bootstrap_servers, dead_letters) == 0  # every alert still waits
        delivery.send_signal(signal.SIGTERM)
        assert delivery.wait(30) == 0, (tmp_path / "delivery.log").read_text()[-3000:]
    finally:
        receiver.close()
    # Sent again by the next delivery: the hung ones were never committed.
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    delivery_env["JOURNEYS_ALERT_WEBHOOKS"] = json.dumps(
        {d: {"url": down, "secret": "a-secret-of-16-bytes+"} for d in DEPARTMENTS}
    )
    delivery = start_delivery(delivery_env, tmp_path / "delivery-again.log")
    try:
        deadline = time.monotonic() + 180
        while count(bootstrap_servers, dead_letters) < alerts and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        delivery.send_signal(signal.SIGTERM)
        assert delivery.wait(30) == 0, (tmp_path / "delivery-again.log").read_text()[-3000:]
    assert count(bootstrap_servers, dead_letters) == alerts
