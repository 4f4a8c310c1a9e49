"""The bulk path of `journeys rescore`: ClickHouse in, rows out, shard by shard.

Touchpoints are read from the `touchpoints` table, never from Kafka (history outlives the
topics' retention). Books (a journey given its id, or a customer's journeys without one)
are split into shards by a hash of their routing key, so a book is always scored whole in
one shard; the main process reads a shard's rows as bytes and inserts what comes back,
and worker processes (spawned: they never touch the embedded engine, which allows one
process per data directory) parse, score and encode. A run is one model version over one
event-time window, scored as of one moment: `rescore_progress` (migration 0007) holds the
run's moment and each finished shard.

Resuming without double counting: every row is idempotent by its sorting key and version
(`journey_id`, `model_version`; ReplacingMergeTree keeps one row per key), the versions
come from event time and journey size like the worker's, and `_ingested_at` is the run's
moment, so a shard scored twice writes byte-identical rows, and the inserts carry a
deduplication token per shard and table as well. A crash leaves at most the shards in
flight unrecorded; the rerun reads the run's moment back, skips the recorded shards and
redoes the others.

Erased customers (`journeys erase`, issue 22) are never stored again: their touchpoints left
the table with them, but a run stages its input first, so an erasure while it runs would
otherwise see their rows come back. Right before each shard's insert the erasure ledger is
read again (one small query) and their journeys and signals are dropped.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.pool import AsyncResult, Pool
from typing import Any, NamedTuple

import orjson

from pipeline.journey import ScoreModel, parse_score_model
from pipeline.journey.events import StoredEvent, to_us
from pipeline.rescore.books import COLUMNS, Book, score_events, stored_row
from pipeline.store import Store
from pipeline.store.base import json_each_row
from pipeline.store.erase import load_ledger
from pipeline.store.erasure import ErasureError, ErasureLedger
from pipeline.store.models import RESCORE, model_sha256, record_model, recorded_sha256
from pipeline.stream.rows import Position

TOPIC = "rescore"  # the rows' `_topic`: where they came from
SHARD_EVENTS = 100_000  # about this many touchpoints a shard (at least MIN_SHARDS shards)
MIN_SHARDS = 8
MAX_SHARDS = 4096
_T = "DateTime64(3, 'UTC')"

# Whether the stored journey id is one the engine derived for the customer (the touchpoint
# came without journey_id): the SQL form of `books.came_without_journey_id`.
_DERIVED = (
    "(startsWith(journey_id, concat(customer_id, '@')) AND match(substring(journey_id, "
    "length(customer_id) + 1), '^@\\\\d{4}-\\\\d\\\\d-\\\\d\\\\dT\\\\d\\\\d:\\\\d\\\\d:"
    "\\\\d\\\\dZ#[0-9a-f]{8}$'))"
)
_BOOK = f"({_DERIVED}, if({_DERIVED}, customer_id, journey_id))"
_SHARD = f"cityHash64({_BOOK}) % {{shards:UInt32}}"
# Touchpoints stored with no journey (journey_id '') came too late for theirs: the live
# worker scored nothing with them, and neither does the rescore.
_PLACED = "journey_id != ''"
_IN_WINDOW = f"""{_BOOK} IN (
    SELECT {_BOOK} FROM touchpoints
    WHERE {_PLACED} AND occurred_at >= {{since:{_T}}} AND occurred_at < {{until:{_T}}})"""


class RescoreError(ValueError):
    """A rescore that cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RescorePlan:
    """What to rescore: the books with a touchpoint in [since, until), with `model`
    (read from `model_toml`), on `workers` processes."""

    model_toml: str
    since: datetime | None = None
    until: datetime | None = None
    workers: int = 2
    shards: int | None = None  # None: from the touchpoint count
    model: ScoreModel = field(init=False)

    def __post_init__(self) -> None:
        import tomllib

        object.__setattr__(self, "model", parse_score_model(tomllib.loads(self.model_toml)))
        if self.since and self.until and self.since >= self.until:
            raise RescoreError(f"--since ({self.since}) must be before --until ({self.until})")
        if self.workers < 1:
            raise RescoreError(f"workers={self.workers}: expected 1 or more")

    @property
    def window(self) -> str:
        """The run's event-time window as the ledger names it."""
        return f"{_moment(self.since) or 'beginning'}..{_moment(self.until) or 'end'}"

    def params(self) -> dict[str, Any]:
        return {
            "since": _moment(self.since or datetime(1970, 1, 1, tzinfo=UTC)),
            "until": _moment(self.until or datetime(2200, 1, 1, tzinfo=UTC)),
        }

    @property
    def windowed(self) -> bool:
        return self.since is not None or self.until is not None


class Progress(NamedTuple):
    shards_done: int
    shards: int
    events_done: int
    events: int


@dataclass
class Outcome:
    model_version: str
    as_of: datetime
    shards: int
    resumed_shards: int = 0  # finished by an earlier, interrupted run
    events: int = 0
    journeys: int = 0
    signals: int = 0
    seconds: float = 0.0
    stopped: bool = False  # by `stop()`, before every shard was done

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class _Run(NamedTuple):
    as_of: datetime
    shards: int
    done: frozenset[int]


def rescore(
    store: Store,
    plan: RescorePlan,
    on_progress: Callable[[Progress], None] = lambda _: None,
    now: datetime | None = None,
    stop: Callable[[], bool] = lambda: False,
    erasure_salt: str | None = None,
) -> Outcome:
    """Score the plan's books with its model and store the rows under its version. When
    `stop()` turns true, return after the shard being stored (`Outcome.stopped`): a rerun
    resumes there. `erasure_salt` (JOURNEYS_ERASURE_SALT) recognises erased customers;
    without it a store whose ledger holds any is refused (RescoreError)."""
    import time

    _erased(store, erasure_salt)
    _check_version(store, plan)
    started = time.monotonic()
    now = now or datetime.now(UTC)
    run = _resume_or_start(store, plan, now.replace(microsecond=now.microsecond // 1000 * 1000))
    with _workers(plan, run) as pool:  # they start up (imports) while the input is staged
        counts = _stage(store, plan, run)
        record_model(store, plan.model.version, RESCORE, plan.model_toml)
        outcome = _score_and_store(store, plan, run, counts, pool, on_progress, stop,
                                   erasure_salt)  # fmt: skip
    store.execute(f"DROP TABLE IF EXISTS {_staged(plan)}")
    outcome.seconds = time.monotonic() - started
    return outcome


def _score_and_store(
    store: Store,
    plan: RescorePlan,
    run: _Run,
    counts: dict[int, int],
    pool: Pool | None,
    on_progress: Callable[[Progress], None],
    stop: Callable[[], bool],
    erasure_salt: str | None,
) -> Outcome:
    outcome = Outcome(plan.model.version, run.as_of, run.shards, resumed_shards=len(run.done))
    todo = [s for s in sorted(counts) if s not in run.done]
    total = sum(counts.values())
    finished = len(run.done)
    done_events = sum(n for s, n in counts.items() if s in run.done)
    on_progress(Progress(finished, run.shards, done_events, total))
    with closing(_scored(store, plan, todo, pool)) as scored:
        for shard, result in scored:
            result = _without_erased(result, _erased(store, erasure_salt))
            token = f"{TOPIC}:{plan.model.version}:{plan.window}:{_moment(run.as_of)}:{shard}"
            store.insert("journeys", result.journeys, dedup_token=f"{token}:journeys")
            store.insert("journey_signals", result.signals, dedup_token=f"{token}:signals")
            _finish_shard(store, plan, run, shard, result)
            outcome.events += result.events
            outcome.journeys += result.journey_count
            outcome.signals += result.signal_count
            finished += 1
            done_events += counts.get(shard, 0)
            on_progress(Progress(finished, run.shards, done_events, total))
            if stop() and finished < len(run.done) + len(todo):
                outcome.stopped = True
                break
        else:
            _finish_empty_shards(store, plan, run, counts)
    return outcome


def _erased(store: Store, salt: str | None) -> ErasureLedger:
    """The erasure ledger as stored now; RescoreError when it names customers that no salt
    lets this run recognise (it would store them again)."""
    try:
        return load_ledger(store, salt).usable()
    except ErasureError as exc:
        raise RescoreError(str(exc)) from None


def _without_erased(result: ShardResult, ledger: ErasureLedger) -> ShardResult:
    """The shard's rows without those of erased customers (as is when none was erased)."""
    if not ledger.hashes:
        return result
    journeys, journey_count = _kept(result.journeys, ledger)
    signals, signal_count = _kept(result.signals, ledger)
    return result._replace(journeys=journeys, signals=signals, journey_count=journey_count,
                           signal_count=signal_count)  # fmt: skip


def _kept(rows: bytes, ledger: ErasureLedger) -> tuple[bytes, int]:
    """JSONEachRow rows whose `customer_id` is not erased, and how many."""
    kept = [line for line in rows.splitlines()
            if line and not ledger.is_erased(orjson.loads(line)["customer_id"])]  # fmt: skip
    return b"".join(line + b"\n" for line in kept), len(kept)


def _finish_empty_shards(
    store: Store, plan: RescorePlan, run: _Run, counts: dict[int, int]
) -> None:
    for shard in range(run.shards):  # shards without touchpoints are finished too
        if shard not in counts and shard not in run.done:
            _finish_shard(store, plan, run, shard, ShardResult(b"", b"", 0, 0, 0))


# --- the model and the run ----------------------------------------------------------------
def _check_version(store: Store, plan: RescorePlan) -> None:
    """One version, one model: rows of a version scored by two models would fold together."""
    sha = model_sha256(plan.model_toml)
    for role, recorded in recorded_sha256(store, plan.model.version).items():
        if recorded != sha:
            raise RescoreError(
                f"model version {plan.model.version!r} is already in the tables ({role}) "
                f"scored by another model file (sha256 {recorded[:12]}, this file "
                f"{sha[:12]}): give this model a new `version` in its TOML"
            )


def _shard_count(store: Store, plan: RescorePlan) -> int:
    if plan.shards is not None:
        return max(1, min(plan.shards, MAX_SHARDS))
    where = f"{_PLACED} AND {_IN_WINDOW}" if plan.windowed else _PLACED
    total = int(store.query(f"SELECT count() AS n FROM touchpoints WHERE {where}",
                            plan.params())[0]["n"])  # fmt: skip
    return max(MIN_SHARDS, min(math.ceil(total / SHARD_EVENTS), MAX_SHARDS))


def _staged(plan: RescorePlan) -> str:
    """The run's copy of its touchpoints, ordered by shard."""
    digest = hashlib.sha256(f"{plan.model.version}\n{plan.window}".encode()).hexdigest()
    return f"rescore_input_{digest[:16]}"


def _stage(store: Store, plan: RescorePlan, run: _Run) -> dict[int, int]:
    """Copy the run's touchpoints with their shard into a table ordered by shard, and say
    how many each shard holds (shards without any are left out). Deciding a touchpoint's
    book takes a regular expression (`_DERIVED`): once here, not once per shard, and a
    shard is then a key range. Made again by every invocation (a resumed run too): the same
    touchpoints, the same shards."""
    where = f"{_PLACED} AND {_IN_WINDOW}" if plan.windowed else _PLACED
    table, params = _staged(plan), plan.params() | {"shards": run.shards}
    store.execute(f"DROP TABLE IF EXISTS {table}")
    store.execute(
        f"CREATE TABLE {table} ENGINE = MergeTree ORDER BY shard AS "
        f"SELECT toUInt32({_SHARD}) AS shard, {', '.join(COLUMNS)} "
        f"FROM touchpoints WHERE {where}",
        params,
    )
    rows = store.query(f"SELECT shard, count() AS n FROM {table} GROUP BY shard")
    return {int(r["shard"]): int(r["n"]) for r in rows}


def _resume_or_start(store: Store, plan: RescorePlan, now: datetime) -> _Run:
    """The unfinished run of this version and window, or a new one as of `now`."""
    key = {"version": plan.model.version, "window": plan.window}
    rows = store.query(
        """SELECT shard, as_of, shards FROM rescore_progress FINAL
        WHERE model_version = {version:String} AND time_window = {window:String}""",
        key,
    )
    start = next((r for r in rows if int(r["shard"]) == -1), None)
    if start is not None:
        as_of, shards = start["as_of"], int(start["shards"])
        done = frozenset(int(r["shard"]) for r in rows
                         if int(r["shard"]) >= 0 and r["as_of"] == as_of)  # fmt: skip
        if len(done) < shards:
            return _Run(as_of, shards, done)
    run = _Run(now, _shard_count(store, plan), frozenset())
    _ledger(store, plan, run, -1, 0, 0)  # the run's start: its moment and its shards
    return run


def _finish_shard(
    store: Store, plan: RescorePlan, run: _Run, shard: int, result: ShardResult
) -> None:
    _ledger(store, plan, run, shard, result.journey_count, result.events)


def _ledger(store: Store, plan: RescorePlan, run: _Run, shard: int, journeys: int,
            events: int) -> None:  # fmt: skip
    store.insert(
        "rescore_progress",
        [{
            "model_version": plan.model.version, "time_window": plan.window,
            "as_of": run.as_of, "shards": run.shards, "shard": shard,
            "journeys": journeys, "events": events, "finished_at": datetime.now(UTC),
        }],
    )  # fmt: skip


# --- scoring shards in worker processes ------------------------------------------------------
class ShardResult(NamedTuple):
    journeys: bytes  # JSONEachRow
    signals: bytes
    events: int
    journey_count: int
    signal_count: int


@contextmanager
def _workers(plan: RescorePlan, run: _Run) -> Iterator[Pool | None]:
    """The scoring processes (None with one worker: it scores in this process, the tests'
    and the profiler's path); they are ended on the way out."""
    setup = (plan.model_toml, to_us(run.as_of), run.as_of)
    if plan.workers == 1:
        _start_worker(*setup)
        yield None
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(plan.workers, initializer=_start_worker, initargs=setup) as pool:
        yield pool


def _scored(
    store: Store, plan: RescorePlan, todo: list[int], pool: Pool | None
) -> Generator[tuple[int, ShardResult]]:
    """(shard, its result) as the workers finish them, in order; a shard is read only when
    a worker is about to be free, so memory holds a few shards at a time."""
    names = ", ".join(name.split(" AS ")[-1] for name in COLUMNS)
    sql = f"SELECT {names} FROM {_staged(plan)} WHERE shard = {{shard:UInt32}}"
    params: dict[str, Any] = {}
    if pool is None:
        for shard in todo:
            yield shard, _score_shard(shard, store.query_bytes(sql, params | {"shard": shard}))
        return
    pending, running = deque(todo), deque[tuple[int, AsyncResult[ShardResult]]]()
    while pending or running:
        while pending and len(running) <= plan.workers:
            shard = pending.popleft()
            payload = store.query_bytes(sql, params | {"shard": shard})
            running.append((shard, pool.apply_async(_score_shard, (shard, payload))))
        shard, result = running.popleft()
        yield shard, result.get()


_WORKER: dict[str, Any] = {}


def _start_worker(model_toml: str, as_of_us: int, as_of: datetime) -> None:
    import signal
    import tomllib

    if multiprocessing.parent_process() is not None:
        # Ctrl-C reaches the whole process group: the main process decides when to stop
        # (after the shard it is storing), and ends the workers itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    _WORKER.update(model=parse_score_model(tomllib.loads(model_toml)), as_of_us=as_of_us,
                   as_of=as_of)  # fmt: skip


def _score_shard(shard: int, payload: bytes) -> ShardResult:
    """A shard's touchpoints (JSONCompactEachRow of `COLUMNS`) scored, book by book."""
    model, as_of_us = _WORKER["model"], _WORKER["as_of_us"]
    at = Position(TOPIC, shard, 0, _WORKER["as_of"])
    books: dict[Book, list[StoredEvent]] = {}
    # one parse for the shard: the rows are JSON arrays a line
    for row in orjson.loads(b"[" + payload.rstrip(b"\n").replace(b"\n", b",") + b"]"):
        book, event = stored_row(row, model)
        books.setdefault(book, []).append(event)
    journeys: list[Any] = []
    signals: list[Any] = []
    events = 0
    for book, events_of_book in books.items():
        rows = score_events(book, events_of_book, model, as_of_us, at)
        journeys += rows.journeys
        signals += rows.signals
        events += rows.events
    return ShardResult(json_each_row(journeys), json_each_row(signals), events, len(journeys),
                       len(signals))  # fmt: skip


def _moment(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if value else None
