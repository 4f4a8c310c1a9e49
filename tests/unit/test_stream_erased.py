"""The worker drops erased customers' events as it reads them, forgets their ids, and its
context API knows them no more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
from faust.types import TP

from pipeline.contract import Touchpoint, Validator, encode_touchpoint
from pipeline.journey import load_score_model
from pipeline.store.erasure import ErasedCustomers, ErasureLedger, customer_hash
from pipeline.stream.book_cache import BookCache
from pipeline.stream.context import ContextAPI
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.erasures import ErasureDesk
from pipeline.stream.metrics import Metrics
from pipeline.stream.outbox import Record
from pipeline.stream.processor import Inbound, JourneyProcessor
from pipeline.stream.worker import partitioner
from tests.support.runtime_rig import TOPIC, RuntimeRig, record

SALT = "s" * 16
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def processor(ledger: ErasureLedger) -> JourneyProcessor:
    return JourneyProcessor(
        load_score_model(), Validator(), BookCache({}.get), partitioner(1),
        touchpoints_topic="touchpoints", alert_horizon_s=0,
        dedup=RecentEventIds(3600 * 24 * 1_000_000, 10_000), metrics=Metrics(), ledger=ledger,
    )  # fmt: skip


def event(event_id: str, customer: str) -> bytes:
    return encode_touchpoint(Touchpoint(
        event_id=event_id, occurred_at=T0 + timedelta(minutes=len(event_id)),
        customer_id=customer, department="customer_service", type="contact",
    ))  # fmt: skip


def test_an_erased_customers_events_and_rejected_payloads_leave_no_row() -> None:
    ledger = ErasureLedger(SALT)  # empty at start: the processor must keep this very object
    p = processor(ledger)
    ledger.add([customer_hash(SALT, "gone")])
    broken = orjson.dumps({"event_id": "x", "customer_id": "gone", "type": "??"})
    values = [event("e1", "gone"), event("e2", "kept"), broken]
    out = p.process(0, [Inbound("touchpoints", 0, i, v) for i, v in enumerate(values)], NOW)
    assert [r["customer_id"] for r in out.rows["touchpoints"]] == ["kept"]
    assert not out.dead_letters and "dead_letters" not in out.rows
    counts = p.metrics.counts
    assert counts["erased_dropped"] == 2
    assert counts["received"] == counts["accepted"] + counts["rejected"] == 3


def test_forgotten_event_ids_leave_the_dedup_memory() -> None:
    ids = RecentEventIds(10**12, 100)
    assert not ids.seen(0, "e1", 1, 1) and not ids.seen(0, "e2", 2, 2)
    ids.forget({"e1"})
    assert not ids.seen(0, "e1", 3, 3)  # new again: no trace of it was kept
    assert ids.seen(0, "e2", 4, 4)


def context_api(rig: RuntimeRig, partitions: int) -> ContextAPI:
    """The context API over the rig's runtime, this worker owning every partition."""
    me = "http://worker-1:6066"
    app = SimpleNamespace(
        journeys_runtime=rig.runtime, rebalancing=False, rebalancing_count=0,
        conf=SimpleNamespace(canonical_url=me),
        router=SimpleNamespace(table_metadata=lambda name: {me: {"changelog": range(partitions)}}),
        assignor=SimpleNamespace(assigned_actives=lambda: {TP("changelog", p)
                                                           for p in range(partitions)}),
    )  # fmt: skip
    table = SimpleNamespace(name="journey_books", changelog_topic=SimpleNamespace(
        get_topic_name=lambda: "changelog"))  # fmt: skip
    return ContextAPI(app, table, topic=TOPIC, partitions=partitions, place=partitioner(partitions),
                      readers=None, emitters=None)  # fmt: skip


def test_the_context_api_knows_no_erased_customer_even_before_its_books_are_deleted(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory(partitions=4)
    sent = [("gone", "CASE-1"), ("gone", None), ("kept", "CASE-2")]
    values = [orjson.loads(event(f"e{n}", customer)) | ({"journey_id": j} if j else {})
              for n, (customer, j) in enumerate(sent)]  # fmt: skip
    place = partitioner(4)
    rig.deliver([record(TOPIC, place(v.get("journey_id") or v["customer_id"]), n,
                        orjson.dumps(v)) for n, v in enumerate(values)])  # fmt: skip
    api = context_api(rig, 4)

    def ask(path: str, *args: Any) -> Any:
        call = api.journey(path, "Bearer t", None) if not args else api.customer(
            path, False, "Bearer t", None)  # fmt: skip
        return asyncio.run(call)

    listed = ask("gone", "customer")
    assert listed.status == 200 and len(listed.body["journeys"]) == 2
    derived = next(j["journey_id"] for j in listed.body["journeys"] if j["journey_id"] != "CASE-1")
    assert ask("CASE-1").status == ask(derived).status == 200
    # The ledger names the customer (an erasure's first step); its books are still held.
    rig.runtime.processor.ledger = ErasureLedger(SALT, {customer_hash(SALT, "gone")})
    assert rig.runtime.books.peek("CASE-1") is not None
    for journey_id in ("CASE-1", derived):
        refused = ask(journey_id)
        assert (refused.status, refused.body["error"]) == (404, "unknown_journey")
    assert ask("gone", "customer").body["journeys"] == []
    assert ask("CASE-2").status == 200
    assert [j["journey_id"] for j in ask("kept", "customer").body["journeys"]] == ["CASE-2"]


def test_the_worker_tells_the_erasures_topic_its_ledger_for_the_alert_delivery() -> None:
    """A snapshot at the first reload and when a reload finds new hashes; the hashes a
    request adds before anything is erased. The desk ignores these messages itself."""
    sent: list[Record] = []
    stored = [customer_hash(SALT, "old")]

    async def send(records: Any) -> None:
        sent.extend(records)

    async def forget_erased() -> int:
        return 0

    runtime = SimpleNamespace(
        processor=SimpleNamespace(ledger=ErasureLedger(SALT)), forget_erased=forget_erased,
        sink=SimpleNamespace(store=SimpleNamespace(
            query=lambda sql: [{"customer_hash": h} for h in stored])),
    )  # fmt: skip
    desk = ErasureDesk(lambda: runtime, SimpleNamespace(send=send), "erasures", SALT, "w1")  # type: ignore[arg-type]
    reader = ErasedCustomers(SALT)
    asyncio.run(desk.reload())
    asyncio.run(desk.reload())  # nothing new, not due: no second snapshot
    assert len(sent) == 1
    for r in sent:
        reader.read(r.key, r.value)
    assert reader.complete and reader.is_erased("old")
    stored.append(customer_hash(SALT, "new"))
    asyncio.run(desk.reload())
    reader.read(sent[-1].key, sent[-1].value)
    assert len(sent) == 2 and reader.is_erased("new")
    asyncio.run(desk.handle(sent[-1].key, sent[-1].value))  # not a request: nothing sent
    assert len(sent) == 2
