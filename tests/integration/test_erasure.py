"""Issue 22: erase customers while the worker runs; nothing of them is left, and a replay of
the topic does not bring them back. Real broker, real chdb, `journeys` as subprocesses; in
embedded mode (the worker's process owns chdb), in server mode (every process talks to
the ClickHouse test server, tests/support/clickhouse_http.py) and on the cluster layout
(Distributed tables over local ones, on the test server's one-node cluster), with the same
checks."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer

from pipeline.simulate import SimulationConfig, simulate
from pipeline.store.server import ServerStore
from tests.support.clickhouse_cluster import lay_out
from tests.support.erasure import CUSTOMER_TABLES, TOTALS
from tests.support.worker_process import RESULT, WorkerProcess, dump, journeys, worker_env

pytestmark = pytest.mark.integration
PARTITIONS = 1  # the producer auto-creates the input topics with one
SALT = "test-salt-0123456789abcdef"
StoreEnv = Callable[[str], dict[str, str]]  # a run's name -> the settings naming its store


@pytest.fixture(params=["embedded", "server", "cluster"])
def store_env(request: pytest.FixtureRequest) -> StoreEnv:
    """Where each run of the test keeps its rows: chdb under the run's data directory, a
    database of its own on the session's ClickHouse test server, or one laid out for the
    cluster layout on the one-node cluster (tests/support/clickhouse_cluster.py)."""
    if request.param == "embedded":
        return lambda _name: {}
    prefix = f"erasure_{uuid.uuid4().hex[:8]}"
    if request.param == "server":
        server = request.getfixturevalue("clickhouse_server")
        return lambda name: server.settings_env(f"{prefix}_{name}")
    node = request.getfixturevalue("clickhouse_cluster")

    def laid_out(name: str) -> dict[str, str]:
        store = ServerStore(node.url, node.user, node.password, f"{prefix}_{name}")
        lay_out(store)
        store.close()
        return node.settings_env(store.database)

    return laid_out


def messages() -> list[tuple[bytes, bytes]]:
    config = SimulationConfig(customers=80, seed=22, start=datetime(2026, 3, 1, tzinfo=UTC))
    return [(d.key, d.value) for d in simulate(config)[0]]


def most_active(sent: list[tuple[bytes, bytes]], count: int) -> list[str]:
    seen: dict[str, int] = {}
    for _, value in sent:
        try:
            customer = json.loads(value).get("customer_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(customer, str):
            seen[customer] = seen.get(customer, 0) + 1
    return sorted(seen, key=lambda c: -seen[c])[:count]


def without(sent: list[tuple[bytes, bytes]], erased: list[str]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in sent if not any(f'"{c}"'.encode() in v for c in erased)]


def produce(bootstrap: str, topic: str, sent: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in sent:
        producer.send(topic, value, key=key)
    producer.flush()
    producer.close()


def run_worker(env: dict[str, str], home: Path, name: str) -> WorkerProcess:
    worker = WorkerProcess(env, home / f"{name}.log")
    worker.start()
    worker.settled(timeout=180)
    return worker


def result(env: dict[str, str], erased: list[str]) -> dict[str, list[dict[str, object]]]:
    ids = ", ".join(f"'{c}'" for c in erased)
    queries = {**RESULT, **TOTALS}
    queries.pop("dead_letters")  # offsets differ between the two topics
    for table in CUSTOMER_TABLES:
        queries[f"left_{table}"] = f"SELECT count() AS n FROM {table} WHERE customer_id IN ({ids})"
    queries["left_dead_letters"] = "SELECT count() AS n FROM dead_letters WHERE " + " OR ".join(
        f"position(raw, '\"{c}\"') > 0" for c in erased
    )
    subprocess.run([sys.executable, "-c", REFRESH], env=env, check=True, timeout=120)
    return dump(env, queries)


def test_erased_customers_leave_every_table_and_a_replay_does_not_restore_them(
    tmp_path: Path, bootstrap_servers: str, unique_name: str, store_env: StoreEnv
) -> None:
    sent = messages()
    erased = most_active(sent, 3)
    topic, reference_topic = f"{unique_name}-in", f"{unique_name}-ref"
    produce(bootstrap_servers, topic, sent)
    produce(bootstrap_servers, reference_topic, without(sent, erased))
    env = worker_env(tmp_path, bootstrap_servers, topic, "a", PARTITIONS) | store_env("a") | {
        "JOURNEYS_ERASURE_SALT": SALT, "JOURNEYS_TOPIC_ERASURES": f"{topic}.erasures",
    }  # fmt: skip
    worker = run_worker(env, tmp_path, "a")
    try:
        said = journeys("erase", *(a for c in erased for a in ("--customer", c)),
                        "--reason", "ticket 22", env=env)  # fmt: skip
        assert "is running: sending the request" in said, said
        for customer in erased:
            assert f"{customer}: " in said and "rows removed (" in said, said
        again = journeys("erase", "--customer", erased[0], env=env)
        assert "0 rows (already erased" in again, again
        unknown = journeys("erase", "--customer", "nobody-at-all", env=env)
        assert "nobody-at-all: 0 rows (no data held" in unknown, unknown
        # Their events sent again (a producer's retry, a replay) are dropped as read.
        produce(bootstrap_servers, topic, [m for m in sent if m not in without(sent, erased)])
        metrics = worker.wait_for(lambda m: m.get("erased_dropped", 0) > 0, 60, "dropped")
        assert metrics["customers_erased"] == 5
        worker.settled(timeout=120)
    finally:
        assert worker.stop() == 0
    erased_run = result(env, erased)
    for name, rows in erased_run.items():
        if name.startswith("left_"):
            assert rows == [{"n": 0}], (name, rows)
    reference_env = worker_env(tmp_path, bootstrap_servers, reference_topic, "ref",
                               PARTITIONS) | store_env("ref")  # fmt: skip
    run_worker(reference_env, tmp_path, "ref").stop()
    reference = result(reference_env, erased)
    for name in (*RESULT, *TOTALS):
        if name != "dead_letters":
            assert erased_run[name] == reference[name], name
    ledger = dump(env, {"rows": "SELECT customer_hash, reason, rows_removed FROM erasures"})
    assert len(ledger["rows"]) == 5
    assert not any(c in json.dumps(ledger) for c in erased)

    # A fresh worker and a fresh store that keeps the ledger, replaying the topic from its
    # start: nothing of the erased customers comes back.
    replay_env = env | {
        "JOURNEYS_DATA_DIR": str(tmp_path / "replay"), "JOURNEYS_WORKER_ID": f"{topic}-replay",
        **{f"JOURNEYS_TOPIC_{kind.upper()}": f"{topic}.{kind}.replay"
           for kind in ("routed", "dead_letters", "scores", "alerts")},
    } | store_env("replay")  # fmt: skip
    kept = dump(env, {"rows": "SELECT customer_hash, toString(erased_at) AS erased_at, reason, "
                      "request_id, removed, rows_removed, erased_by FROM erasures"})  # fmt: skip
    subprocess.run([sys.executable, "-c", COPY_LEDGER, json.dumps(kept["rows"])],
                   env=replay_env, check=True, timeout=120)  # fmt: skip
    replayer = run_worker(replay_env, tmp_path, "replay")
    try:
        assert (replayer.metrics() or {}).get("erased_dropped", 0) > 0
    finally:
        assert replayer.stop() == 0
    replayed = result(replay_env, erased)
    for name, rows in replayed.items():
        if name.startswith("left_"):
            assert rows == [{"n": 0}], (name, rows)
    for name in ("journeys", "signals", "touchpoints", "lost_points", "per_hour", "cells"):
        assert replayed[name] == reference[name], name

    # Without the salt the ledger's hashes cannot be matched: the worker must not start.
    unsalted = WorkerProcess(replay_env | {"JOURNEYS_ERASURE_SALT": ""}, tmp_path / "unsalted.log")
    unsalted.start()
    assert unsalted.process is not None
    try:
        code = unsalted.process.wait(90)
    except subprocess.TimeoutExpired:
        unsalted.stop()
        raise AssertionError(f"an unsalted worker kept running:\n{unsalted.tail()}") from None
    assert code != 0 and "JOURNEYS_ERASURE_SALT is not set" in unsalted.tail(), unsalted.tail()


REFRESH = """
from pipeline.settings import load_settings
from pipeline.store import get_store
from pipeline.store.erase import refresh_views
store = get_store(load_settings())
refresh_views(store)
store.close()
"""
COPY_LEDGER = """
import json, sys
from pipeline.settings import load_settings
from pipeline.store import apply_migrations, get_store
store = get_store(load_settings())
apply_migrations(store)
store.insert("erasures", json.loads(sys.argv[1]))
store.close()
"""
