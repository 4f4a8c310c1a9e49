"""Who was erased, without keeping who: salted hashes of customer ids, and the ledger rows.

Pure: no I/O. `pipeline.store.erase` runs an erasure against a store and reads the ledger
table (`erasures`, migration 0009) into an `ErasureLedger`; the worker, `journeys rescore`
and the context API ask that ledger `is_erased(customer_id)` before they keep, score or
return anything of a customer.

The hash is HMAC-SHA256 keyed by JOURNEYS_ERASURE_SALT. A plain sha256 of an id would let
anyone with the table test every id of the customer base against it; with a secret key only
whoever holds the salt can. The same salt must therefore stay set for as long as the ledger
is kept: with another salt no hash matches, and a replay would bring every erased customer
back (the worker refuses to start in that case, see `check_salt`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

SALT_MIN_CHARS = 16
REASON_MAX_CHARS = 500


class ErasureError(ValueError):
    """An erasure request that cannot run as given (the message says what to change)."""


def check_salt(salt: str | None) -> str:
    """The salt, or ErasureError saying how to set one: an erasure never runs unsalted."""
    if not salt:
        raise ErasureError(
            "JOURNEYS_ERASURE_SALT is not set: the erasure ledger keeps customer ids only as "
            f"hashes keyed by that secret; set it to a random string of at least "
            f"{SALT_MIN_CHARS} characters (e.g. `openssl rand -hex 32`), the same for every "
            "worker and for as long as the ledger is kept"
        )
    if len(salt) < SALT_MIN_CHARS:
        raise ErasureError(
            f"JOURNEYS_ERASURE_SALT has {len(salt)} characters, expected at least "
            f"{SALT_MIN_CHARS}: a short key lets the hashes be tested id by id"
        )
    return salt


def customer_hash(salt: str, customer_id: str) -> str:
    """The ledger's name for a customer: hex HMAC-SHA256 of the id under the salt."""
    return hmac.new(salt.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


# The worker asks `is_erased` of every event once anyone is erased; a customer's events come
# in runs (a journey's touchpoints), so the hashes of the customers seen lately are kept: a
# cache hit costs a dict lookup instead of an HMAC. Keyed by salt and id, so ledgers with
# different salts never share an answer; bounded (least recently used go first), about
# 20 MB when full.
HASH_CACHE_SIZE = 1 << 16
_cached_hash = functools.lru_cache(maxsize=HASH_CACHE_SIZE)(customer_hash)


def check_customer_ids(ids: Iterable[str]) -> list[str]:
    """The ids to erase, each once, in the order given; ErasureError for an empty one.

    Ids are taken exactly as the events carry them (no trimming): " c-1" is another
    customer than "c-1", and erasing it must not erase "c-1".
    """
    checked: list[str] = []
    for position, customer_id in enumerate(ids, start=1):
        if not customer_id.strip():
            raise ErasureError(
                f"--customer #{position} is {customer_id!r}: expected a customer id (an empty "
                "id would name no one, or everyone with an empty id)"
            )
        if customer_id not in checked:
            checked.append(customer_id)
    if not checked:
        raise ErasureError("no --customer given: expected at least one customer id to erase")
    return checked


def check_reason(reason: str) -> str:
    if len(reason) > REASON_MAX_CHARS:
        raise ErasureError(
            f"--reason has {len(reason)} characters, expected at most {REASON_MAX_CHARS}: the "
            "reason is a reference (a ticket, 'GDPR art. 17 request'), not the request itself"
        )
    return reason


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class ErasureLedger:
    """The salted hashes of every erased customer: `is_erased(customer_id)`.

    An empty ledger answers without hashing, so a pipeline that never erased anyone pays
    nothing per event; otherwise a question costs one HMAC (about a microsecond) the first
    time a customer is asked about and a cache lookup after (`HASH_CACHE_SIZE` customers).
    """

    salt: str | None
    hashes: set[str] = field(default_factory=set)

    def is_erased(self, customer_id: str) -> bool:
        if not self.hashes or self.salt is None:
            return False
        return _cached_hash(self.salt, customer_id) in self.hashes

    def add(self, hashes: Iterable[str]) -> None:
        self.hashes.update(hashes)

    def __len__(self) -> int:
        return len(self.hashes)

    def usable(self) -> ErasureLedger:
        """Self, or ErasureError when hashes exist but no salt to match ids against them:
        a worker that cannot tell erased customers would bring them back on a replay."""
        if self.hashes and not self.salt:
            raise ErasureError(
                f"the erasure ledger holds {len(self.hashes)} erased customer(s) but "
                "JOURNEYS_ERASURE_SALT is not set: without it their events cannot be "
                "recognised and a replay would restore them; set the salt they were erased with"
            )
        return self


@dataclass(frozen=True)
class ErasureOutcome:
    """What one erasure removed of one customer, table by table (rows, before merges)."""

    customer_id: str
    customer_hash: str
    removed: Mapping[str, int]
    erased_before: bool  # the ledger already had this customer

    @property
    def rows_removed(self) -> int:
        return sum(self.removed.values())


def ledger_row(
    outcome: ErasureOutcome, erased_at: datetime, reason: str, request_id: str, erased_by: str
) -> dict[str, Any]:
    """The `erasures` row of one outcome: the hash, never the id."""
    if erased_at.tzinfo is None:
        raise ValueError(f"erased_at={erased_at!r}: expected a timezone-aware time")
    return {
        "customer_hash": outcome.customer_hash,
        "erased_at": erased_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        "reason": reason,
        "request_id": request_id,
        "removed": {table: count for table, count in sorted(outcome.removed.items()) if count},
        "rows_removed": outcome.rows_removed,
        "erased_by": erased_by,
    }


def describe(outcome: ErasureOutcome) -> str:
    """One line for a person: what was removed, or that nothing was (and why)."""
    tables = ", ".join(f"{t} {n:,}" for t, n in sorted(outcome.removed.items()) if n)
    if outcome.rows_removed:
        return f"{outcome.customer_id}: {outcome.rows_removed:,} rows removed ({tables})"
    if outcome.erased_before:
        return f"{outcome.customer_id}: 0 rows (already erased; nothing of it was left)"
    return f"{outcome.customer_id}: 0 rows (no data held for this customer id)"


# --- the erasures topic: requests from `journeys erase`, replies from the worker ---------
REPLY_PREFIX = b"done:"


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    customer_ids: tuple[str, ...]
    reason: str
    requested_by: str

    def encode(self) -> bytes:
        return orjson.dumps(
            {"request_id": self.request_id, "customer_ids": list(self.customer_ids),
             "reason": self.reason, "requested_by": self.requested_by}
        )  # fmt: skip

    @classmethod
    def decode(cls, raw: bytes) -> ErasureRequest:
        """A request from the topic; ErasureError for anything else (it is skipped)."""
        try:
            body = orjson.loads(raw)
            request = cls(
                str(body["request_id"]),
                tuple(check_customer_ids(str(c) for c in body["customer_ids"])),
                check_reason(str(body.get("reason", ""))),
                str(body.get("requested_by", "")),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ErasureError(f"not an erasure request ({type(exc).__name__}: {exc})") from None
        return request


def encode_reply(request_id: str, outcomes: Sequence[ErasureOutcome]) -> tuple[bytes, bytes]:
    """The worker's reply (key, value): per customer in request order, hash and counts;
    the ids are the requester's own, and not repeated."""
    body = [{"customer_hash": o.customer_hash, "removed": dict(o.removed),
             "erased_before": o.erased_before} for o in outcomes]  # fmt: skip
    return REPLY_PREFIX + request_id.encode(), orjson.dumps({"outcomes": body})


def decode_reply(request: ErasureRequest, raw: bytes) -> list[ErasureOutcome]:
    """The outcomes of a reply; ErasureError with the worker's reason when it failed."""
    reply = orjson.loads(raw)
    if "error" in reply:
        raise ErasureError(f"the worker did not erase: {reply['error']}")
    body = reply["outcomes"]
    return [
        ErasureOutcome(customer_id, o["customer_hash"], o["removed"], o["erased_before"])
        for customer_id, o in zip(request.customer_ids, body, strict=True)
    ]


# --- who is erased, for readers without the store: `journeys alerts deliver` ----------------
# The worker publishes the hashes it adds to its ledger (an erasure's first step), and its
# whole ledger as a snapshot at start, when a reload finds new hashes and well within the
# topic's retention; the alert delivery reads them. In embedded mode the worker's process
# owns chdb, so the topic is the only way another process learns the ledger.
ERASED_PREFIX = b"erased:"
HASHES_PER_MESSAGE = 5_000  # about 330 kB: below Kafka's default 1 MB message limit


def encode_erased(hashes: Iterable[str], snapshot: str | None) -> list[tuple[bytes, bytes]]:
    """Messages (key, value) naming these hashes as erased. A snapshot (`snapshot` its id)
    is the whole ledger in parts, at least one even when empty, so that a reader knows when
    it has seen all of it; None: hashes just added."""
    ordered = sorted(hashes)
    chunks = [ordered[i:i + HASHES_PER_MESSAGE]
              for i in range(0, len(ordered), HASHES_PER_MESSAGE)] or [[]]  # fmt: skip
    key = ERASED_PREFIX + (snapshot or "added").encode()
    parts = len(chunks)
    return [
        (key, orjson.dumps({"hashes": c, "snapshot": snapshot, "part": n, "parts": parts}))
        for n, c in enumerate(chunks)
    ]


class ErasedCustomers:
    """The erased customers as the erasures topic tells them: every hash published there
    (snapshots, hashes added, the worker's replies), and whether a whole snapshot was read,
    since only then is every earlier erasure known (`complete`)."""

    def __init__(self, salt: str) -> None:
        self.ledger = ErasureLedger(salt)
        self.complete = False
        self._parts: dict[str, set[int]] = {}

    def is_erased(self, customer_id: str) -> bool:
        return self.ledger.is_erased(customer_id)

    def read(self, key: bytes | None, value: bytes | None) -> None:
        """One message of the erasures topic; requests (ids in clear) are not looked at.
        ErasureError for a message of ours that cannot be read."""
        key = key or b""
        if value is None or not key.startswith((ERASED_PREFIX, REPLY_PREFIX)):
            return
        try:
            body = orjson.loads(value)
            if key.startswith(REPLY_PREFIX):
                self.ledger.add(str(o["customer_hash"]) for o in body.get("outcomes", ()))
                return
            self.ledger.add(str(h) for h in body["hashes"])
            snapshot = body.get("snapshot")
            if snapshot is not None:
                seen = self._parts.setdefault(str(snapshot), set())
                seen.add(int(body["part"]))
                self.complete = self.complete or len(seen) >= int(body["parts"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ErasureError(f"unreadable {key[:7]!r} message ({type(exc).__name__})") from None
