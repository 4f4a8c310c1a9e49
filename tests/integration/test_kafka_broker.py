"""The local Apache Kafka broker: real messages in and out, restarts, one broker at a time."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from pipeline.kafka import LocalBroker
from pipeline.kafka.local import free_port
from tests.support.kafka import JARS_DIR, Message, create_topic, new_broker, produce

REPO = Path(__file__).resolve().parents[2]
JOURNEYS = str(Path(sys.executable).with_name("journeys"))


def numbered(count: int, keys: int = 50) -> list[Message]:
    """Values 0..count-1, keyed by `keys` customers in turn."""
    return [(f"customer-{i % keys}".encode(), str(i).encode()) for i in range(count)]


def consume_all(
    bootstrap: str, topic: str, group: str, expected: int
) -> list[tuple[int, bytes, int]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,
    )
    seen: list[tuple[int, bytes, int]] = []
    try:
        for message in consumer:
            seen.append((message.partition, message.key, int(message.value)))
            if len(seen) >= expected:
                break
    finally:
        consumer.close()
    return seen


def test_ten_thousand_messages_come_back_in_order_per_partition(
    bootstrap_servers: str, unique_name: str
) -> None:
    create_topic(bootstrap_servers, unique_name, partitions=4)
    produce(bootstrap_servers, unique_name, numbered(10_000))
    seen = consume_all(bootstrap_servers, unique_name, unique_name, 10_000)

    assert sorted(value for _, _, value in seen) == list(range(10_000))
    per_partition: dict[int, list[int]] = defaultdict(list)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    for partition, key, value in seen:
        per_partition[partition].append(value)
        partitions_of_key[key].add(partition)
    assert len(per_partition) == 4, "keys should spread over every partition"
    for values in per_partition.values():
        assert values == sorted(values), "a partition delivered out of order"
    assert all(len(p) == 1 for p in partitions_of_key.values()), "a key spans partitions"


def test_messages_survive_a_stop_and_a_restart(tmp_path: Path) -> None:
    broker = new_broker(tmp_path / "kafka")
    first = broker.start(timeout=120)
    try:
        produce(first.bootstrap_servers, "survivors", numbered(500))
        broker.stop()
        assert broker.state() is None
        second = broker.start(timeout=120)
        assert second.port == first.port, "a restart should keep the broker's address"
        seen = consume_all(second.bootstrap_servers, "survivors", "after-restart", 500)
        assert sorted(value for _, _, value in seen) == list(range(500))
    finally:
        if broker.state() is not None:
            broker.stop()


def test_a_restart_right_after_a_stop_keeps_the_port(tmp_path: Path) -> None:
    import socket

    broker = new_broker(tmp_path / "kafka")
    first = broker.start(timeout=120)
    said: list[str] = []
    try:
        # A client still connected when the broker stops: the broker closes the connection
        # first, which leaves its side in TIME-WAIT on the broker's port for about a minute.
        with socket.create_connection(("127.0.0.1", first.port)):
            produce(first.bootstrap_servers, "kept", numbered(10))
            broker.stop()
        second = broker.start(timeout=120, say=said.append)
        assert second.port == first.port, said
        assert said == []
    finally:
        if broker.state() is not None:
            broker.stop()


def test_a_move_off_the_remembered_port_is_said(tmp_path: Path) -> None:
    import socket

    broker = new_broker(tmp_path / "kafka")
    first = broker.start(timeout=120)
    broker.stop()
    said: list[str] = []
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first.port))
        squatter.listen()
        second = broker.start(timeout=120, say=said.append)
        try:
            assert second.port != first.port
            assert any(
                f"port {first.port}" in line and f"using {second.port}" in line for line in said
            ), said
        finally:
            broker.stop()


def test_a_reconfigured_preferred_port_is_taken_up_at_the_next_start(tmp_path: Path) -> None:
    broker = new_broker(tmp_path / "kafka")
    first = broker.start(timeout=120)
    broker.stop()
    moved = LocalBroker(broker.home, JARS_DIR, preferred_port=free_port())
    second = moved.start(timeout=120)
    try:
        assert (first.port, second.port) == (broker.preferred_port, moved.preferred_port)
    finally:
        moved.stop()


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOURNEYS, *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )


def broker_processes(data_dir: Path) -> list[str]:
    """Command lines of live Kafka brokers whose configuration lies under `data_dir`."""
    found = []
    for cmdline_file in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = cmdline_file.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if "kafka.Kafka" in cmdline and str(data_dir) in cmdline:
            found.append(cmdline)
    return found


def test_cli_start_twice_runs_one_broker(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # Reuse the cached jars: link them where this data directory expects them.
    (data_dir / "kafka").mkdir(parents=True)
    (data_dir / "kafka" / "lib").symlink_to(JARS_DIR.resolve(), target_is_directory=True)
    env = {**os.environ, "JOURNEYS_DATA_DIR": str(data_dir), "JOURNEYS_KAFKA_LOCAL_PORT": "9092"}
    try:
        first = run_cli("kafka", "start", env=env)
        assert first.returncode == 0, first.stderr
        assert "Kafka broker running at" in first.stdout
        second = run_cli("kafka", "start", env=env)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert len(broker_processes(data_dir)) == 1
        status = run_cli("kafka", "status", env=env)
        assert status.returncode == 0 and "running at 127.0.0.1:" in status.stdout
    finally:
        stopped = run_cli("kafka", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert broker_processes(data_dir) == []
    status = run_cli("kafka", "status", env=env)
    assert status.returncode == 3 and "not running" in status.stdout


def test_a_taken_port_is_replaced_by_a_free_one_and_said(tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        broker = LocalBroker(tmp_path / "kafka", JARS_DIR, preferred_port=taken)
        said: list[str] = []
        state = broker.start(timeout=120, say=said.append)
        try:
            assert state.port != taken
            assert any(
                f"port {taken} is taken" in line and str(state.port) in line for line in said
            )
        finally:
            broker.stop()


def test_a_first_jar_resolve_says_how_far_it_got(tmp_path: Path) -> None:
    from pipeline.kafka import ensure_jars

    said: list[str] = []
    jars = ensure_jars(tmp_path / "lib", said.append)
    count = len(list(jars.glob("*.jar")))
    assert said[0].startswith("resolving Apache Kafka jars with Maven")
    # Maven takes seconds even from its local cache (minutes from Maven Central): at least
    # one line while it runs, then what was resolved.
    assert any(line.startswith("maven: ") for line in said[1:-1]), said
    assert said[-1].startswith(f"{count} Kafka jars (") and count > 20, said
    before = len(said)
    assert ensure_jars(tmp_path / "lib", said.append) == jars
    assert len(said) == before, "a cached resolve should say nothing"


def test_missing_java_is_named(tmp_path: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    env = {**os.environ, "PATH": str(bare_path), "JOURNEYS_DATA_DIR": str(tmp_path / "d")}
    done = run_cli("kafka", "start", env=env)
    assert done.returncode == 1
    assert "Java is not installed" in done.stderr


def test_missing_maven_is_named_when_jars_are_not_cached(tmp_path: Path) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    java = subprocess.run(["which", "java"], capture_output=True, text=True, check=True).stdout
    (bare_path / "java").symlink_to(Path(java.strip()).resolve())
    env = {**os.environ, "PATH": str(bare_path), "JOURNEYS_DATA_DIR": str(tmp_path / "d")}
    done = run_cli("kafka", "start", env=env)
    assert done.returncode == 1
    assert "Maven is not installed" in done.stderr


def data_dir_with_cached_jars(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    (data_dir / "kafka").mkdir(parents=True)
    (data_dir / "kafka" / "lib").symlink_to(JARS_DIR.resolve(), target_is_directory=True)
    return data_dir


def local_env(data_dir: Path, **values: str) -> dict[str, str]:
    """The environment of a user with no Kafka configured: commands find the local broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
    return env | {"JOURNEYS_DATA_DIR": str(data_dir)} | values


def keys_on(bootstrap: str, topic: str, at_least: int) -> list[bytes]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=15_000
    )
    keys: list[bytes] = []
    try:
        for message in consumer:
            keys.append(message.key)
            if len(keys) >= at_least:
                break
    finally:
        consumer.close()
    return keys


def test_commands_follow_the_local_broker_off_a_taken_default_port(tmp_path: Path) -> None:
    import socket

    data_dir = data_dir_with_cached_jars(tmp_path)
    env = local_env(data_dir)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event_id": "e1", "occurred_at": "2025-06-02T08:00:00Z", "customer_id": "c1", '
        '"department": "sales", "type": "contact"}\n'
    )
    with socket.socket() as impostor:
        # Whatever else listens on the default port (another broker, another program):
        # commands must not send there. When something already holds it, so much the better.
        impostor.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            impostor.bind(("127.0.0.1", 9092))
            impostor.listen()
        try:
            started = run_cli("kafka", "start", env=env)
            assert started.returncode == 0, started.stderr
            port = json.loads((data_dir / "kafka" / "broker.json").read_text())["port"]
            assert port != 9092
            address = f"127.0.0.1:{port}"

            shown = run_cli("config", env=env)
            assert f"{address} (the local broker)" in shown.stdout
            emitted = run_cli("emit", str(events), "--topic", "followed", env=env)
            assert emitted.returncode == 0, emitted.stdout + emitted.stderr
            assert f"sent 1 of 1 valid lines to followed at {address}" in emitted.stdout
            simulated = run_cli(
                "simulate", "--customers=3", "--days=2", "--topic=simulated", env=env
            )
            assert simulated.returncode == 0, simulated.stderr
            assert keys_on(address, "followed", 1) == [b"c1"]
            assert keys_on(address, "simulated", 1)
        finally:
            run_cli("kafka", "stop", env=env)


@pytest.fixture(autouse=True)
def _jars_are_cached() -> None:
    assert (JARS_DIR / ".resolved").exists(), f"run `make jars` first: no Kafka jars in {JARS_DIR}"
