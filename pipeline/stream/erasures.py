"""The worker's side of `journeys erase`: requests from the erasures topic, done in-process.

In embedded mode the worker's process owns chdb (one process per data directory), so the
command cannot delete while the worker runs: it sends a request to the erasures topic and
waits for this desk's reply there. Server mode takes the same path, so there is one. For a
request, in this order:

1. the customers' hashes join the processor's ledger: from here on, their events are
   dropped as they are read, and no new row of theirs is buffered;
2. between two checkpoints (`Runtime.between_checkpoints`: what was buffered before 1 is
   stored first, nothing is written during), `Eraser.erase` deletes their rows and
   recomputes the aggregates, and the ledger rows are written;
3. their books leave the state table (tombstones to its changelog) and memory, and their
   event ids the de-dup memory (`Runtime.forget_erased`);
4. the reply (hash and counts per customer, in the request's order) goes to the topic.

The erasures topic has one partition, so one worker of a group takes the requests; the
others learn of them from the ledger table (`reload`, every few seconds) and drop those
customers' books and events alike.

The alert delivery (`journeys alerts deliver`) cannot read the ledger table in embedded mode
(chdb belongs to this process), so the worker tells it on the same topic: the hashes it adds
at step 1, before anything is erased, and its whole ledger as a snapshot (`encode_erased`)
at its first reload, whenever a reload finds new hashes (another worker's erasure, or one
run directly) and every `snapshot_every` seconds, well within the topic's retention.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson

from pipeline.store.erase import Eraser, load_ledger
from pipeline.store.erasure import (
    ERASED_PREFIX,
    REPLY_PREFIX,
    ErasureError,
    ErasureLedger,
    ErasureOutcome,
    ErasureRequest,
    customer_hash,
    encode_erased,
    encode_reply,
    new_request_id,
)
from pipeline.stream.outbox import Outbox, Record
from pipeline.stream.runtime import Runtime

log = logging.getLogger("pipeline.stream")


class ErasureDesk:
    def __init__(
        self, runtime: Callable[[], Runtime | None], outbox: Outbox, topic: str,
        salt: str | None, worker: str, snapshot_every: float = 3600.0,
    ) -> None:  # fmt: skip
        self.runtime = runtime
        self.outbox = outbox
        self.topic = topic
        self.salt = salt
        self.worker = worker
        self.snapshot_every = snapshot_every
        self._snapshot_at: float | None = None  # monotonic time of the last snapshot

    async def handle(self, key: bytes | None, value: bytes | None) -> None:
        if (key or b"").startswith((REPLY_PREFIX, ERASED_PREFIX)) or value is None:
            return  # our own replies and ledger messages share the topic
        try:
            request = ErasureRequest.decode(value)
        except ErasureError as exc:
            log.error("erasure request skipped: %s", exc)
            return
        runtime = self.runtime()
        if runtime is None or self.salt is None:
            await self._reply(request.request_id, error="the worker has no store open or no "
                              "JOURNEYS_ERASURE_SALT set; nothing was erased")  # fmt: skip
            return
        try:
            await self._erase(runtime, request, self.salt)
        except Exception as exc:  # the requester hears why; the worker goes on
            log.exception("erasure failed request=%s", request.request_id)
            await self._reply(request.request_id, error=f"{type(exc).__name__}: {exc}")

    async def _erase(self, runtime: Runtime, request: ErasureRequest, salt: str) -> None:
        ledger = runtime.processor.ledger
        before = ErasureLedger(salt, set(ledger.hashes))
        added = {customer_hash(salt, c) for c in request.customer_ids}
        ledger.add(added)
        await self._publish(encode_erased(added, None))  # the alert delivery stops sending
        eraser = Eraser(runtime.sink.store)

        def erase() -> list[ErasureOutcome]:
            outcomes = eraser.erase(request.customer_ids, salt, before)
            eraser.record(outcomes, request.reason, request.request_id, self.worker)
            return outcomes

        outcomes = await runtime.between_checkpoints(erase)
        books = await runtime.forget_erased()
        runtime.metrics.add("customers_erased", len(outcomes))
        log.info("erasure done request=%s customers=%d rows=%d books=%d", request.request_id,
                 len(outcomes), sum(o.rows_removed for o in outcomes), books)  # fmt: skip
        reply_key, reply = encode_reply(request.request_id, outcomes)
        await self.outbox.send([Record(self.topic, reply_key, reply, partition=0)])

    async def _reply(self, request_id: str, error: str) -> None:
        body = orjson.dumps({"error": error})
        await self.outbox.send([Record(self.topic, REPLY_PREFIX + request_id.encode(), body,
                                       partition=0)])  # fmt: skip

    async def reload(self) -> None:
        """New ledger rows (another worker's erasures, or `journeys erase` run directly):
        their customers' books go too."""
        runtime = self.runtime()
        if runtime is None:
            return
        fresh = await asyncio.to_thread(load_ledger, runtime.sink.store, self.salt)
        ledger = runtime.processor.ledger
        new = fresh.hashes - ledger.hashes
        if new:
            ledger.add(fresh.hashes)
            books = await runtime.forget_erased()
            log.info("erasure ledger reloaded customers=%d books_deleted=%d", len(ledger), books)
        due = (
            self._snapshot_at is None or time.monotonic() - self._snapshot_at >= self.snapshot_every
        )
        if self.salt is not None and (new or due):
            await self._publish(encode_erased(ledger.hashes, new_request_id()))
            self._snapshot_at = time.monotonic()

    async def _publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        await self.outbox.send([Record(self.topic, k, v, partition=0) for k, v in messages])
