"""The context API on the real broker: a journey's context matches the events sent
(timeline, open promise, time left on the partition's clock), a customer's journeys are
found across partitions, tokens are checked, and with two workers in one group a request
to either is answered, by the worker that owns the journey's partition.

The events are sent before the first worker starts, which then owns every partition; a
second worker joins and takes some, so each answers some journeys from its own state and
forwards the others to their owner.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from pipeline.kafka.local import free_port
from pipeline.stream.outbox import partition_of
from tests.support.worker_process import WorkerProcess, worker_env

pytestmark = pytest.mark.integration
PARTITIONS = 4
READER = "s3cr3t-field-reader"
EMITTER = "s3cr3t-billing-emitter"
CUSTOMER = "cust-ctx-1"


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    worker: str | None


def get(worker: WorkerProcess, path: str, token: str | None = READER) -> Reply:
    url = f"http://127.0.0.1:{worker.env['JOURNEYS_WORKER_WEB_PORT']}{path}"
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return Reply(reply.status, json.loads(reply.read()), reply.headers["X-Journeys-Worker"])
    except urllib.error.HTTPError as error:
        return Reply(error.code, json.loads(error.read()), error.headers["X-Journeys-Worker"])
    except urllib.error.URLError:
        return Reply(0, {}, None)  # not listening yet


def answered(worker: WorkerProcess, path: str, timeout: float = 60) -> Reply:
    """The answer once the worker is up and ready (503 while it starts or partitions move)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = get(worker, path)
        if reply.status not in (0, 503) or time.monotonic() > deadline:
            return reply
        time.sleep(0.3)


def journeys_sent(now: datetime) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Journeys of one customer on every partition: by case number, and without one."""
    events: list[dict[str, Any]] = []
    ids: dict[str, list[str]] = {}

    def event(kind: str, minutes: int, journey_id: str | None, **attributes: Any) -> None:
        event_id = f"ctx-{uuid.uuid4().hex[:10]}"
        events.append({
            "event_id": event_id, "occurred_at": (now + timedelta(minutes=minutes)).isoformat(),
            "customer_id": CUSTOMER, "department": attributes.pop("department", "customer_service"),
            "type": kind, "channel": "phone", "attributes": attributes,
            **({"journey_id": journey_id} if journey_id else {}),
        })  # fmt: skip
        ids.setdefault(journey_id or CUSTOMER, []).append(event_id)

    cases = [f"CASE-{n}" for n in range(40)]
    placed = {partition_of(c.encode(), PARTITIONS): c for c in cases}
    assert len(placed) == PARTITIONS
    for case in placed.values():
        event("contact", -90, case, reason=f"boiler noise ({case})", resolved=False)
        event("handoff", -80, case, to_department="maintenance", context_transferred=False)
        due_at = (now + timedelta(days=2)).isoformat()
        event("promise_made", -70, case, department="maintenance", promise_id="visit",
              due_at=due_at, description="technician visit")  # fmt: skip
    event("contact", -60, None, reason="wrong invoice", resolved=True, department="billing")
    return events, ids


@pytest.fixture(scope="module")
def group(bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home: Path = tmp_path_factory.mktemp("context_api")
    topic = f"t_context_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    now = datetime.now(UTC).replace(microsecond=0)
    events, ids = journeys_sent(now)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    for sent in events:
        producer.send(topic, key=(sent.get("journey_id") or CUSTOMER).encode(),
                      value=json.dumps(sent).encode())  # fmt: skip
    producer.flush()
    producer.close()
    env = worker_env(home, bootstrap_servers, topic, "group", PARTITIONS) | {
        "JOURNEYS_CONTEXT_TOKENS": json.dumps({READER: ["maintenance"]}),
        "JOURNEYS_COLLECTOR_TOKENS": json.dumps({EMITTER: ["billing"]}),
    }
    workers = []
    try:
        for name in ("first", "second"):
            member = env | {"JOURNEYS_DATA_DIR": str(home / name),
                            "JOURNEYS_WORKER_WEB_PORT": str(free_port())}  # fmt: skip
            workers.append(WorkerProcess(member, home / f"{name}.log"))
        first, second = workers
        first.start()
        first.settled()
        yield {"first": first, "second": second, "events": events, "ids": ids, "now": now}
    finally:
        for worker in workers:
            worker.stop()


def test_a_journeys_context_matches_the_events_sent(group: dict) -> None:
    first, events = group["first"], group["events"]
    case = next(e["journey_id"] for e in events if e.get("journey_id"))
    reply = answered(first, f"/v1/journeys/{case}")
    assert reply.status == 200, reply.body
    context = reply.body
    sent = [e for e in events if e.get("journey_id") == case]
    assert [t["event_id"] for t in context["timeline"]] == [e["event_id"] for e in sent]
    assert [t["type"] for t in context["timeline"]] == ["contact", "handoff", "promise_made"]
    assert context["timeline"][0]["said"] == f"boiler noise ({case})"
    (promise,) = context["open_promises"]
    due = group["now"] + timedelta(days=2)
    as_of = datetime.fromisoformat(context["as_of"])
    # The partition's clock follows the wall clock once idle (ticks): time left is ~2 days.
    assert abs((as_of - datetime.now(UTC)).total_seconds()) < 30
    assert promise["seconds_left"] == (due - as_of) // timedelta(seconds=1)
    assert (promise["department"], promise["due_at"], promise["overdue"]) == (
        "maintenance", due.isoformat(), False)  # fmt: skip
    assert {s["signal"] for s in context["signals"]} == {"context_lost"}
    assert context["score"] == 94 and context["band"] == "good"
    assert [t["reason"] for t in context["already_told_us"]] == [f"boiler noise ({case})"]


def test_tokens_are_checked_and_unknown_journeys_are_404_with_a_reason(group: dict) -> None:
    first = group["first"]
    assert answered(first, "/v1/journeys/CASE-none").status == 404
    missing = get(first, "/v1/journeys/CASE-none")
    assert missing.body["error"] == "unknown_journey" and "CASE-none" in missing.body["reason"]
    nobody = get(first, "/v1/journeys/CASE-0", token=None)
    assert (nobody.status, nobody.body["error"]) == (401, "unauthorized")
    assert get(first, "/v1/journeys/CASE-0", token="guess").status == 401
    emitter = get(first, "/v1/journeys/CASE-0", token=EMITTER)
    assert (emitter.status, emitter.body["error"]) == (403, "forbidden")
    assert READER not in first.tail() and EMITTER not in first.tail()
    metrics = first.metrics()
    assert metrics is not None and metrics["context_refused"] >= 4


def test_a_customers_open_journeys_are_found_across_partitions(group: dict) -> None:
    reply = answered(group["first"], f"/v1/customers/{CUSTOMER}/journeys?open=true")
    assert reply.status == 200, reply.body
    found = {j["journey_id"] for j in reply.body["journeys"]}
    cases = {key for key in group["ids"] if key != CUSTOMER}
    assert len(found) == len(cases) + 1 and cases <= found  # and the one without journey_id
    assert all(j["open_promises"] == 1 for j in reply.body["journeys"] if j["journey_id"] in cases)
    assert get(group["first"], "/v1/customers/nobody/journeys").body["journeys"] == []
    assert get(group["first"], f"/v1/customers/{CUSTOMER}/journeys?open=maybe").status == 400


def test_with_two_workers_a_request_to_either_is_answered_by_the_owner(group: dict) -> None:
    second = group["second"]
    second.start()
    cases = sorted(key for key in group["ids"] if key != CUSTOMER)
    deadline = time.monotonic() + 120
    before: dict[str, str | None] = {}
    while True:
        # Until the second worker took partitions, both answer for every journey, and who
        # answers did not change since the last look (a round may straddle the rebalance).
        replies = {(w, case): answered(group[w], f"/v1/journeys/{case}")
                   for w in ("first", "second") for case in cases}  # fmt: skip
        owners = {key: r.worker for key, r in replies.items()}
        ok = all(r.status == 200 for r in replies.values())
        if ok and len(set(owners.values())) == 2 and owners == before:
            break
        before = owners
        assert time.monotonic() < deadline, (replies, second.tail())
        time.sleep(1)
    for case in cases:
        one, other = replies[("first", case)], replies[("second", case)]
        assert one.worker == other.worker  # the owner answered both, directly or forwarded
        assert one.body["timeline"] == other.body["timeline"]
        assert one.body["open_promises"][0]["promise_id"] == "visit"
    counted = [group[w].metrics() or {} for w in ("first", "second")]
    assert all(m["context_answered"] > 0 and m["context_forwarded"] > 0 for m in counted), counted
    path = f"/v1/customers/{CUSTOMER}/journeys?open=true"
    lists = [answered(group[w], path) for w in ("first", "second")]
    assert [r.status for r in lists] == [200, 200]
    ids = [[j["journey_id"] for j in r.body["journeys"]] for r in lists]
    assert ids[0] == ids[1] and len(ids[0]) == len(cases) + 1
    # The journey without journey_id: its id is derived, its book the customer's.
    (derived,) = set(ids[0]) - set(cases)
    quoted = urllib.parse.quote(derived, safe="")
    answers = [answered(group[w], f"/v1/journeys/{quoted}") for w in ("first", "second")]
    assert [a.status for a in answers] == [200, 200], [a.body for a in answers]
    assert {a.worker for a in answers} == {answers[0].worker}
    assert answers[0].body["already_told_us"][0]["reason"] == "wrong invoice"
