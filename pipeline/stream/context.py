"""The context API's edge (`/v1/journeys/...`): who asks, which worker holds the journey,
and the answer read from this worker's journey state or asked of the worker that owns it.

The answer itself is `pipeline.journey.context` (pure); the views are `pipeline.stream.web`.

Where a journey lives: its book is on the partition of its Kafka key (journey_id, or the
customer id for journeys without one), and the partition's owner is the group member
Faust's assignor gave the table's changelog partition to (`app.router.table_metadata`:
Faust's table routing, which `@app.table_route` uses too; it cannot serve here since a
journey id may name two books, a customer's and a journey-keyed one, on two partitions).
A request that reaches another member is forwarded to the owner, once: a forwarded
request (header `X-Journeys-Forwarded`: the partitions it is about) is answered from local
state, or with 503 when this worker no longer owns one of them, never forwarded again, so a
stale assignment can make requests neither loop nor come back with a wrong 404. A
customer's journeys are spread over every partition: each member answers for its own
(`CustomerIndex`), and the member asked merges them.

Books are read from the engine's memory first (the freshest: what was processed but not
yet checkpointed), else from the state table; nothing here changes either. Reads happen
on the event loop between batches, so a book is never seen half updated.

An erased customer (`journeys erase`, issue 22) is unknown here from the moment the
worker's ledger names it: its journeys answer 404 and its list is empty, as for a customer
never seen, even while its books still wait to be deleted (the erasure runs between two
checkpoints, and the other workers of a group delete theirs at their next ledger reload).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from faust.types import TP
from yarl import URL

from pipeline.contract.tokens import Grant, TokenConfigError, Tokens, parse_tokens
from pipeline.journey import JourneyBook, routing_key
from pipeline.journey.book import CUSTOMER_BOOK_PREFIX
from pipeline.journey.context import book_keys_for, customer_journeys, journey_context
from pipeline.settings import Settings
from pipeline.stream.book_cache import CLOCK_PREFIX, clock_key
from pipeline.stream.clock import NEVER
from pipeline.stream.runtime import Runtime
from pipeline.stream.state import in_partition

log = logging.getLogger("pipeline.stream.context")
FORWARDED = "X-Journeys-Forwarded"
ANSWERED_BY = "X-Journeys-Worker"  # the web URL of the worker whose state answered
JSON = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    status: int
    body: JSON
    headers: dict[str, str] = field(default_factory=dict)


def refusal(status: int, error: str, reason: str, **headers: str) -> Reply:
    return Reply(status, {"error": error, "reason": reason}, dict(headers))


NOT_READY = refusal(503, "not_ready", "the worker is starting or its partitions are moving; "
                    "retry in a second", **{"Retry-After": "1"})  # fmt: skip


class ContextAPI:
    def __init__(
        self, app: Any, table: Any, *, topic: str, partitions: int,
        place: Callable[[str], int], readers: Tokens | None, emitters: Tokens | None,
        forward_timeout: float = 5.0,
    ) -> None:  # fmt: skip
        self.app, self.table = app, table
        self.topic, self.partitions, self.place = topic, partitions, place
        self.readers, self.emitters = readers, emitters
        self.forward_timeout = forward_timeout
        self._owners_of: tuple[int, dict[int, str] | None] = (-1, None)
        self._me_at: tuple[str | None, int | None] | None = None

    # --- who asks -------------------------------------------------------------------
    def authorize(self, authorization: str | None) -> Grant | Reply:
        """The reading department's grant, or the refusal to answer with (the token is
        compared in constant time and never logged or echoed)."""
        if self.readers is None:
            return refusal(503, "not_configured", "the context API has no tokens: set "
                           "JOURNEYS_CONTEXT_TOKENS or JOURNEYS_CONTEXT_TOKENS_FILE")  # fmt: skip
        grant = self.readers.authenticate(authorization)
        if grant is not None:
            return grant
        if self.emitters is not None and self.emitters.authenticate(authorization) is not None:
            return refusal(403, "forbidden", "this token may emit touchpoints, not read "
                           "journeys: use a token of JOURNEYS_CONTEXT_TOKENS")  # fmt: skip
        return refusal(401, "unauthorized", "expected the header Authorization: Bearer TOKEN "
                       "with a token of JOURNEYS_CONTEXT_TOKENS",
                       **{"WWW-Authenticate": 'Bearer realm="journeys"'})  # fmt: skip

    # --- the two questions ----------------------------------------------------------
    async def journey(self, journey_id: str, authorization: str, forwarded: str | None) -> Reply:
        """The journey's context. `forwarded`: the header of a request another worker sent
        here as the owner of these partitions; only they are looked at, and 503 if this
        worker no longer owns one (the asker retries once the group settled)."""
        runtime = self._runtime()
        owners = self._owners() if runtime is not None else None
        expected = _partitions(forwarded)
        if runtime is None or owners is None or not self._owns_all(owners, expected):
            return NOT_READY
        for key in book_keys_for(journey_id):
            partition = self.place(routing_key(key))
            owner = owners.get(partition)
            if expected is not None and partition not in expected:
                continue
            if owner is None:
                return NOT_READY
            if self._is_me(owner):
                context = self._local_journey(runtime, partition, key, journey_id)
                if context is not None:
                    return Reply(200, context, {ANSWERED_BY: self.me()})
            else:
                path = ("v1", "journeys", journey_id)
                reply = await self._ask(owner, path, {}, authorization, [partition])
                if reply.status != 404:
                    return reply
        return refusal(404, "unknown_journey", f"no journey {journey_id!r} in the worker's "
                       "state (closed journeys leave it after the retention)")  # fmt: skip

    async def customer(self, customer_id: str, open_only: bool, authorization: str,
                       forwarded: str | None) -> Reply:  # fmt: skip
        """The customer's journeys on every partition: this worker's, and each other
        worker's asked for its own (`forwarded` as for `journey`)."""
        runtime = self._runtime()
        owners = self._owners() if runtime is not None else None
        expected = _partitions(forwarded)
        if runtime is None or owners is None or len(owners) < self.partitions:
            return NOT_READY
        if not self._owns_all(owners, expected):
            return NOT_READY
        if runtime.processor.ledger.is_erased(customer_id):  # as unknown: nothing to list
            return Reply(200, {"customer_id": customer_id, "journeys": []},
                         {ANSWERED_BY: self.me()})  # fmt: skip
        mine = sorted(expected if expected is not None else
                      (p for p, owner in owners.items() if self._is_me(owner)))  # fmt: skip
        found = self._local_customer(runtime, customer_id, mine, open_only)
        if expected is None:
            theirs: dict[str, list[int]] = {}
            for partition, owner in sorted(owners.items()):
                if not self._is_me(owner):
                    theirs.setdefault(owner, []).append(partition)
            query = {"open": "true" if open_only else "false"}
            path = ("v1", "customers", customer_id, "journeys")
            replies = await asyncio.gather(*(self._ask(o, path, query, authorization, ps)
                                             for o, ps in theirs.items()))  # fmt: skip
            for reply in replies:
                if reply.status != 200:
                    return reply
                found.extend(reply.body["journeys"])
        found.sort(key=lambda s: (s["started_at"], s["journey_id"]))
        body = {"customer_id": customer_id, "journeys": found}
        return Reply(200, body, {ANSWERED_BY: self.me()})

    # --- this worker's state --------------------------------------------------------
    def _local_journey(self, runtime: Runtime, partition: int, key: str,
                       journey_id: str) -> JSON | None:  # fmt: skip
        book = self._book(runtime, partition, key)
        if book is None or runtime.processor.ledger.is_erased(book.customer_id):
            return None
        return journey_context(book, journey_id, runtime.processor.model,
                               self._clock(runtime, partition))  # fmt: skip

    def _local_customer(self, runtime: Runtime, customer_id: str, partitions: list[int],
                        open_only: bool) -> list[JSON]:  # fmt: skip
        for partition in partitions:
            self._index(runtime, partition)
        keys = runtime.processor.customers.books_of(customer_id, partitions)
        own = self.place(customer_id)
        if own in partitions:
            keys.append((own, CUSTOMER_BOOK_PREFIX + customer_id))
        books = []
        for partition, key in keys:
            book = self._book(runtime, partition, key)
            if book is not None:
                books.append((book, self._clock(runtime, partition)))
        return customer_journeys(books, customer_id, runtime.processor.model,
                                 open_only=open_only)  # fmt: skip

    def _book(self, runtime: Runtime, partition: int, key: str) -> JourneyBook | None:
        book = runtime.books.peek(key)
        if book is not None:
            return book
        with in_partition(self.topic, partition):
            raw = runtime.state.read(key)
        if raw is None:
            return None
        book = JourneyBook.from_bytes(raw)
        return book if book.book_key == key else None  # another kind's, filed long ago

    def _clock(self, runtime: Runtime, partition: int) -> int:
        """The partition's event-time clock (as stored, before its first batch here)."""
        now = runtime.processor.clocks.now(partition)
        if now == NEVER:
            with in_partition(self.topic, partition):
                stored = runtime.state.read(clock_key(partition))
            now = int(stored) if stored is not None else NEVER
        return now

    def _index(self, runtime: Runtime, partition: int) -> None:
        """Index a partition no batch has recovered yet (a quiet one), as recovery does."""
        customers = runtime.processor.customers
        if customers.indexed(partition):
            return
        customers.start(partition)
        with in_partition(self.topic, partition):
            for key, raw in runtime.state.items(partition):
                if key.startswith((CLOCK_PREFIX, CUSTOMER_BOOK_PREFIX)):
                    continue
                book = JourneyBook.from_bytes(raw)
                if (
                    book.by_journey_id
                    and book.book_key == key
                    and self.place(book.key) == partition
                ):
                    customers.add(partition, book.customer_id, key)

    # --- the group ------------------------------------------------------------------
    def _runtime(self) -> Runtime | None:
        runtime: Runtime | None = self.app.journeys_runtime
        if runtime is None or runtime.moving or runtime.failed or self.app.rebalancing:
            return None
        return runtime

    def _owners(self) -> dict[int, str] | None:
        """Each assigned partition's owner (its web URL); None before the first assignment.
        Computed once per rebalance, after it (the caller asks only when `_runtime` says
        no rebalance runs)."""
        count = self.app.rebalancing_count
        if self._owners_of[0] != count or self._owners_of[1] is None:
            self._owners_of = (count, self._assignment())
        return self._owners_of[1]

    def _assignment(self) -> dict[int, str] | None:
        changelog = self.table.changelog_topic.get_topic_name()
        try:
            metadata = self.app.router.table_metadata(self.table.name)
        except KeyError:
            return None
        owners = {p: host for host, topics in metadata.items()
                  for p in topics.get(changelog, ())}  # fmt: skip
        actives = self.app.assignor.assigned_actives()
        # This worker answers only for what it holds now, whatever the metadata says.
        for partition, owner in list(owners.items()):
            if self._is_me(owner) and TP(changelog, partition) not in actives:
                del owners[partition]
        return owners or None

    def _owns_all(self, owners: dict[int, str], partitions: list[int] | None) -> bool:
        return partitions is None or all(p in owners and self._is_me(owners[p]) for p in partitions)

    def me(self) -> str:
        """This worker's web URL, as the group knows it."""
        return str(self.app.conf.canonical_url)

    def _is_me(self, url: str) -> bool:
        if self._me_at is None:
            mine = URL(str(self.app.conf.canonical_url))
            self._me_at = (mine.host, mine.port)
        other = URL(url)
        return self._me_at == (other.host, other.port)

    async def _ask(self, owner: str, path: tuple[str, ...], query: dict[str, str],
                   authorization: str, partitions: list[int]) -> Reply:  # fmt: skip
        """The owner's answer to the same question about `partitions` (the caller's token
        goes along: every member checks it against the same configuration)."""
        encoded = "/" + "/".join(quote(segment, safe="") for segment in path)
        url = URL(owner).with_path(encoded, encoded=True).with_query(query)
        headers = {"Authorization": authorization, FORWARDED: ",".join(map(str, partitions))}
        timeout = aiohttp.ClientTimeout(total=self.forward_timeout)
        try:
            async with self.app.http_client.get(url, headers=headers, timeout=timeout) as got:
                body = await got.json(content_type=None)
                kept = {name: got.headers[name] for name in (ANSWERED_BY, "Retry-After")
                        if name in got.headers}  # fmt: skip
                return Reply(got.status, body if isinstance(body, dict) else {"body": body}, kept)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("context request not answered by %s: %s", owner, type(error).__name__)
            return refusal(503, "owner_unreachable", "the worker holding this journey did not "
                           "answer; retry", **{"Retry-After": "1"})  # fmt: skip


def _partitions(forwarded: str | None) -> list[int] | None:
    """The partitions a forwarded request is about (None: not forwarded; a malformed
    header names none, so nothing is looked at and the answer is a 404 or an empty list)."""
    if forwarded is None:
        return None
    try:
        return [int(p) for p in forwarded.split(",") if p.strip()]
    except ValueError:
        return []


def context_tokens(settings: Settings) -> tuple[Tokens | None, Tokens | None]:
    """The readers' tokens (None when unset: the API answers 503) and, when this worker's
    settings hold them too, the collector's (a collector token is then answered 403, not
    401). A malformed JOURNEYS_CONTEXT_TOKENS stops the worker at start (TokenConfigError);
    the collector's are the collector's to refuse."""
    configured = settings.secret_text("context_tokens", TokenConfigError)
    readers = parse_tokens(*configured) if configured is not None else None
    emitters = None
    try:
        collector = settings.secret_text("collector_tokens", TokenConfigError)
        emitters = parse_tokens(*collector) if collector is not None else None
    except TokenConfigError:
        emitters = None
    return readers, emitters
