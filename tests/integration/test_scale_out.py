"""Workers in one group, one store: partitions, journey state, de-dup state and pending
deadlines move between worker processes, and the stored result is a single worker's.

One simulated month goes to a topic of six partitions while worker processes of one
consumer group (server mode, one ClickHouse endpoint) come and go: the first starts alone,
a second joins an eighth of the way in, a third at three tenths; at nine twentieths the
third is killed with SIGKILL (no goodbye: its partitions wait out the session timeout, its
uncommitted input is replayed by their next owners), at two thirds the second is stopped
with SIGTERM (it stores what it took, then leaves), and the first, which gets back every
partition the others took from it, reads the rest. Input keeps arriving through every
rebalance; each step waits on the group's state or the workers' counters, never on a clock.

Then one worker in a group of its own reads the same topic from the start. Both stores
must hold the same touchpoints, journeys, signals, points lost per department and stage,
and dead letters, row for row, and both alert topics the same promise_broken alerts: a
deadline lost in a move would be missing, one fired by two owners would be alerted twice.

The month lies ahead of the wall clock (the workers accept it with a wider future
tolerance), so an idle worker's wall-clock tick moves no partition's clock: every deadline
fires on event time alone, whichever process holds the partition and however the input
was batched. A last event per partition, twenty days after the month, passes every
deadline the month left open.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from pipeline.kafka.local import free_port
from pipeline.simulate import SimulationConfig, simulate
from pipeline.stream.outbox import partition_of
from tests.support.clickhouse_process import ClickHouseProcess
from tests.support.consumer_group import end_offsets, wait_stored
from tests.support.worker_process import RESULT, WorkerProcess, dump, worker_env

pytestmark = pytest.mark.integration
PARTITIONS = 6
CUSTOMERS = 300
RATE = 150.0  # messages per second once the first worker runs: input flows through moves
Message = tuple[bytes, bytes]


# --- input ---------------------------------------------------------------------------------
def month(start: datetime) -> list[Message]:
    """The simulated month in sending order, then one event per partition after it."""
    config = SimulationConfig(customers=CUSTOMERS, seed=16, start=start)
    deliveries, _ = simulate(config)
    messages = [(d.key, d.value) for d in deliveries]
    return messages + [clock_event(p, config.end + timedelta(days=20)) for p in range(PARTITIONS)]


def clock_event(partition: int, at: datetime) -> Message:
    """A contact of a customer whose key lands on `partition`, at `at`."""
    key = next(k for n in range(10_000) if partition_of(k := f"clock-{n}".encode(),
                                                        PARTITIONS) == partition)  # fmt: skip
    event = {"event_id": f"clock-{partition}", "occurred_at": at.isoformat(),
             "customer_id": key.decode(), "department": "sales", "type": "contact"}  # fmt: skip
    return key, json.dumps(event).encode()


class Feed(threading.Thread):
    """Sends the messages in order at `RATE`; at a gate (a message index) it waits until
    the main thread opens it, so every move happens before the input it must precede."""

    def __init__(self, bootstrap: str, topic: str, messages: list[Message]) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.messages = bootstrap, topic, messages
        self.sent = 0
        self.gates: dict[int, threading.Event] = {}
        self.error: BaseException | None = None

    def gate(self, share: float) -> threading.Event:
        return self.gates.setdefault(int(len(self.messages) * share), threading.Event())

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        try:
            started = time.monotonic()
            for index, (key, value) in enumerate(self.messages):
                if index in self.gates:
                    producer.flush()
                    self.gates[index].wait()
                    started = time.monotonic() - index / RATE
                time.sleep(max(started + index / RATE - time.monotonic(), 0))
                producer.send(self.topic, key=key, value=value)
                self.sent = index + 1
            producer.flush()
        except BaseException as exc:  # the test reports it
            self.error = exc
        finally:
            producer.close()

    def reached(self, share: float) -> Callable[[], bool]:
        return lambda: self.sent >= int(len(self.messages) * share)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"never {what}")


def members(bootstrap: str, group: str, count: int) -> Callable[[], bool]:
    """Whether the group is stable (not rebalancing) with `count` members."""
    # kafka-python cannot decode Faust's member metadata and warns at every look: not news.
    logging.getLogger("kafka.admin").setLevel(logging.ERROR)

    def check() -> bool:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            info = admin.describe_groups([group])[group]
        finally:
            admin.close()
        return bool(info["group_state"] == "Stable" and len(info["members"]) == count)

    return check


def alerts(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every alert on the topic, from the start to its end now."""
    ends = {p: o for p, o in end_offsets(bootstrap, topic).items() if o > 0}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in ends]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        while any(consumer.position(tp) < ends[tp.partition] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                found.extend(records)
    finally:
        consumer.close()
    return [json.loads(r.value) | {"_at": r.timestamp / 1000} for r in found]


# --- runs ----------------------------------------------------------------------------------
class Group:
    """Worker processes of one consumer group: the same topics, store and group id; a data
    directory and a web port each."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.members: list[WorkerProcess] = []

    @property
    def id(self) -> str:
        return self.env["JOURNEYS_WORKER_ID"]

    def start(self) -> WorkerProcess:
        name = f"member{len(self.members) + 1}"
        env = self.env | {"JOURNEYS_DATA_DIR": str(self.home / name),
                          "JOURNEYS_WORKER_WEB_PORT": str(free_port())}  # fmt: skip
        worker = WorkerProcess(env, self.home / f"{name}.log")
        worker.start()
        self.members.append(worker)
        return worker

    def alive(self) -> bool:
        return any(w.process is not None and w.process.poll() is None for w in self.members)

    def logs(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.tail()}" for w in self.members)

    def said(self, text: str) -> list[str]:
        """Lines of the members' logs that contain `text`."""
        lines = (line for w in self.members for line in w.log.read_text().splitlines())
        return [line for line in lines if text in line]


def took_input(worker: WorkerProcess) -> Callable[[], bool]:
    def check() -> bool:
        metrics = worker.metrics()
        return metrics is not None and metrics["received"] > 0

    return check


def scale_out(bootstrap: str, group: Group, topic: str, messages: list[Message]) -> dict:
    """The month through workers that come and go; the exit codes and the kill's time.

    The first worker outlives the others: the partitions the second and third took from it
    come back, so what it remembers of them from before must not outlive the moves.
    """
    feed = Feed(bootstrap, topic, messages)
    joined_second, joined_third, killed, left = (feed.gate(share) for share in
                                                 (0.25, 0.4, 0.55, 0.75))  # fmt: skip
    first = group.start()
    feed.start()
    wait_until(took_input(first), 120, "the first worker took input")
    wait_until(feed.reached(1 / 8), 60, "an eighth sent")
    second = group.start()
    wait_until(members(bootstrap, group.id, 2), 120, "two members")
    joined_second.set()
    wait_until(feed.reached(0.3), 60, "three tenths sent")
    third = group.start()
    wait_until(members(bootstrap, group.id, 3), 120, "three members")
    joined_third.set()
    wait_until(feed.reached(0.45), 60, "nine twentieths sent")
    assert third.process is not None and third.process.poll() is None, third.tail()
    third.process.kill()  # SIGKILL mid-stream: no checkpoint, no leaving the group
    killed_at = time.time()
    third.process.wait(10)
    wait_until(members(bootstrap, group.id, 2), 90, "the killed worker's partitions moved")
    killed.set()
    wait_until(feed.reached(0.65), 60, "two thirds sent")
    stopped = second.stop()  # SIGTERM while input arrives: it stores what it took, leaves
    wait_until(members(bootstrap, group.id, 1), 90, "the stopped worker's partitions moved")
    left.set()
    feed.join(120)
    assert feed.error is None and feed.sent == len(messages), feed.error
    wait_stored(bootstrap, group.id, topic, group.env["JOURNEYS_TOPIC_ROUTED"], 120,
                alive=group.alive)  # fmt: skip
    return {"killed_at": killed_at, "stopped": stopped, "last": first.stop()}


@pytest.fixture(scope="module")
def runs(
    bootstrap_servers: str,
    clickhouse_server: ClickHouseProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("scale_out")
    topic = f"t_scale_out_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    start = (datetime.now(UTC) + timedelta(days=60)).replace(minute=0, second=0, microsecond=0)
    messages = month(start)
    common = {
        # The month ends ~110 days ahead, its last events 20 days after that.
        "JOURNEYS_CONTRACT_FUTURE_TOLERANCE_SECONDS": str(150 * 86_400),
        "JOURNEYS_WORKER_SESSION_TIMEOUT_SECONDS": "6",  # a killed member's partitions move
        "JOURNEYS_WORKER_BATCH_SIZE": "200",
    }
    envs = {
        name: worker_env(home, bootstrap_servers, topic, name, PARTITIONS)
        | clickhouse_server.settings_env(f"journeys_{name}_{uuid.uuid4().hex[:8]}")
        | common
        for name in ("group", "single")
    }
    group = Group(home, envs["group"])
    try:
        moves = scale_out(bootstrap_servers, group, topic, messages)
    except BaseException:
        print(group.logs())
        raise
    finally:
        for worker in group.members:
            worker.stop()
    single = WorkerProcess(envs["single"] | {"JOURNEYS_DATA_DIR": str(home / "single")},
                           home / "single.log")  # fmt: skip
    single.start()
    try:
        wait_stored(bootstrap_servers, envs["single"]["JOURNEYS_WORKER_ID"], topic,
                    envs["single"]["JOURNEYS_TOPIC_ROUTED"], 120, alive=single.running)  # fmt: skip
    finally:
        moves["single"] = single.stop()
    alert_topics = {name: env["JOURNEYS_TOPIC_ALERTS"] for name, env in envs.items()}
    return {
        "moves": moves,
        "logs": group.logs(),
        # Commits of partitions their worker no longer owns (Faust drops them, saying so).
        "late_commits": group.said("Discarded commit") + group.said("offsets not committed"),
        "stored": {name: dump(env, RESULT) for name, env in envs.items()},
        "alerts": {name: alerts(bootstrap_servers, t) for name, t in alert_topics.items()},
    }


# --- the checks ----------------------------------------------------------------------------
def test_workers_that_come_and_go_store_what_one_worker_stores(runs: dict[str, Any]) -> None:
    moves = runs["moves"]
    assert (moves["stopped"], moves["last"], moves["single"]) == (0, 0, 0), runs["logs"]
    # What a worker took of a partition is stored and committed before the partition moves.
    assert runs["late_commits"] == []
    single, group = runs["stored"]["single"], runs["stored"]["group"]
    for table, rows in single.items():
        assert rows, f"the single worker stored no {table}"
        missing = [row for row in rows if row not in group[table]]
        extra = [row for row in group[table] if row not in rows]
        assert (missing, extra) == ([], []), f"{table}: missing {missing[:3]}, extra {extra[:3]}"
        assert group[table] == rows, table  # and in the same order, row for row
    kinds = {row["signal"] for row in single["signals"]}
    assert {"promise_broken", "promise_kept", "repeat_contact", "slow_resolution"} <= kinds


def test_every_broken_promise_is_alerted_once_across_the_moves(runs: dict[str, Any]) -> None:
    """Alerts are at-least-once (a replay re-sends what the killed worker sent after its
    last commit), so a second copy is accepted only of an alert first sent in the seconds
    before the kill; any other would be a deadline fired by two owners."""
    broken = {name: [a for a in found if a["kind"] == "promise_broken"]
              for name, found in runs["alerts"].items()}  # fmt: skip
    signals = {row["signal_id"] for row in runs["stored"]["single"]["signals"]
               if row["signal"] == "promise_broken"}  # fmt: skip
    single_ids = Counter(a["alert_id"] for a in broken["single"])
    group_ids = Counter(a["alert_id"] for a in broken["group"])
    assert set(group_ids) == set(single_ids)
    assert {a["ref"] for a in broken["single"]} >= signals  # every deadline in the store alerted
    assert max(single_ids.values()) == 1
    first_sent = {}
    for alert in sorted(broken["group"], key=lambda a: a["_at"]):
        first_sent.setdefault(alert["alert_id"], alert["_at"])
    killed_at = runs["moves"]["killed_at"]
    twice = {i: first_sent[i] - killed_at for i, n in group_ids.items() if n > 1}
    assert all(-10 < before <= 0 for before in twice.values()), twice
