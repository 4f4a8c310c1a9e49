"""`journeys run` started before its Kafka broker: it waits, says so, and stops cleanly.

A supervisor (docker compose after a host reboot, systemd) or a developer may start the
worker before the broker answers. It must neither die with a traceback (exit 1) nor spin:
it says once that Kafka does not answer, waits, exits 0 on SIGTERM or Ctrl-C meanwhile,
and starts working as soon as a broker answers, the local one on a port found then.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from pipeline.kafka import LocalBroker
from pipeline.kafka.local import free_port
from tests.support.kafka import JARS_DIR, produce
from tests.support.scripted_journeys import as_messages, scripted_touchpoints
from tests.support.worker_process import WorkerProcess, worker_env

pytestmark = pytest.mark.integration
PARTITIONS = 2
WAITING = "does not answer"


def waiting_worker(tmp_path: Path, name: str, topic: str) -> WorkerProcess:
    """A worker on the embedded defaults whose Kafka is the local broker, not started:
    JOURNEYS_KAFKA_BOOTSTRAP_SERVERS unset, the local broker's preferred port free."""
    env = worker_env(tmp_path, "unused", topic, name, PARTITIONS)
    del env["JOURNEYS_KAFKA_BOOTSTRAP_SERVERS"]
    env["JOURNEYS_KAFKA_LOCAL_PORT"] = str(free_port())
    return WorkerProcess(env, tmp_path / f"{name}.log")


def wait_for_line(run: WorkerProcess, text: str, timeout: float = 60) -> None:
    """Until the whole log has `text`: `tail()` is its last 4,000 characters, which Faust's
    start-up lines push a line out of within a second."""
    deadline = time.monotonic() + timeout
    while text not in run.log.read_text(errors="replace"):
        assert run.running(), f"exited {run.process and run.process.returncode}\n{run.tail()}"
        assert time.monotonic() < deadline, f"never said {text!r}\n{run.tail()}"
        time.sleep(0.2)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_worker_stopped_while_waiting_for_kafka_exits_0(
    tmp_path: Path, unique_name: str, stop: signal.Signals
) -> None:
    run = waiting_worker(tmp_path, "early", unique_name)
    port = run.env["JOURNEYS_KAFKA_LOCAL_PORT"]
    run.start()
    try:
        wait_for_line(run, WAITING)
        time.sleep(3)  # several attempts: still one line, not one per attempt
        assert run.process is not None
        started = time.monotonic()
        run.process.send_signal(stop)
        code = run.process.wait(10)
    finally:
        run.stop()
    log = run.log.read_text()
    assert code == 0, log
    assert time.monotonic() - started < 5, log
    assert log.count(WAITING) == 1, log
    assert f"Kafka at 127.0.0.1:{port} does not answer" in log
    assert "journeys kafka start" in log  # what to do about it
    assert "stopped while waiting for Kafka; nothing was taken" in log
    assert "Traceback" not in log and "Error" not in log.replace("[Errno", ""), log


def test_a_waiting_worker_starts_when_the_local_broker_does(
    tmp_path: Path, unique_name: str
) -> None:
    run = waiting_worker(tmp_path, "first", unique_name)
    # `journeys kafka start` on the worker's data directory, on another port than the one
    # the worker first asked: it finds the broker through the broker's state file.
    broker = LocalBroker(
        Path(run.env["JOURNEYS_DATA_DIR"]) / "kafka", JARS_DIR, preferred_port=free_port()
    )
    touchpoints = scripted_touchpoints(3)
    run.start()
    try:
        wait_for_line(run, WAITING)
        broker.start(timeout=120)
        state = broker.state()
        assert state is not None
        wait_for_line(run, f"Kafka at {state.bootstrap_servers} answers, after")
        run.wait_for(run.caught_up, 120, "assigned and caught up")
        produce(state.bootstrap_servers, unique_name, as_messages(touchpoints))
        run.wait_for(lambda m: m["accepted"] == len(touchpoints), 60, "took every event")
        code, seconds = run.terminate()
    finally:
        run.stop()
        broker.stop()
    assert code == 0 and seconds < 10, (code, seconds, run.tail())
