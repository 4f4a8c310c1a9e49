"""One partition's batch of messages in, everything it causes out. No Faust, no I/O.

The Faust agent hands each partition's share of a batch to `JourneyProcessor.process` and
turns the returned `Output` into table rows (via the sink), dead letters, re-keyed events,
score snapshots and alerts. Touchpoints are grouped by journey key, so each book is read
and re-scored once per batch however many of its events arrived together.

A book's catch-up (its deadlines up to the partition clock, its promise alerts, its next
wake-up) may be left for later: `process(..., settle=False)` notes the book, and `settle`
catches up every noted book of a partition once. The worker settles right before each
checkpoint takes its batches, so a journey with events in many fetches of one checkpoint is
caught up once, not once per fetch (at 250 messages a slice that was a quarter of the
processor's time). Before a noted book takes its next event, its deadlines (only those)
are stepped up to the partition clock as the previous slice left it, as a catch-up after
that slice, or a wake-up since, would have stepped them: an event must not be the one to
fire a deadline the clock had passed before it, or the journey's snapshot (its version,
`updated_at`) would be taken at the event instead of just past the deadline, unlike the
catch-ups' and a re-score's (`pipeline.rescore`). The rows are the same either way; only
promise alerts are looked for less often (docs/departments.md).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from pipeline.contract import Rejection, Touchpoint, Validator
from pipeline.journey import (
    Changes,
    JourneyBook,
    PromiseDue,
    ScoreModel,
    add,
    advance,
    book_key,
    load_score_model,
)
from pipeline.journey import promises_due as open_promises
from pipeline.journey.book import next_deadline_us
from pipeline.journey.events import from_us, to_us
from pipeline.store.erasure import ErasureLedger
from pipeline.stream import rows as build
from pipeline.stream.alert_context import journey_context
from pipeline.stream.book_cache import BookCache
from pipeline.stream.clock import PartitionClocks, Wakeups
from pipeline.stream.customers import CustomerIndex
from pipeline.stream.dedup import RecentEventIds
from pipeline.stream.metrics import Metrics
from pipeline.stream.rows import Latest, Position, Row, SignalSet

if TYPE_CHECKING:
    from pipeline.settings import Settings

_FAR_US = 10 * 365 * 86_400 * 1_000_000  # "every open promise", for the alert wake-up
# Signals that are also alerts to the department responsible (with journeys turning poor
# and promises falling due soon).
ALERTING_SIGNALS = frozenset({"promise_broken", "feedback_unanswered"})


class Inbound(msgspec.Struct, frozen=True, gc=False):
    """One consumed message. `tick_us` is set for an idle clock tick (no touchpoint);
    `value` is None for a record without value (a tombstone), which is rejected."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    produced_at: float = 0.0  # Kafka timestamp, seconds
    tick_us: int | None = None


@dataclass
class Output:
    rows: dict[str, list[Row]] = field(default_factory=dict)
    dead_letters: list[tuple[bytes, Position, Rejection]] = field(default_factory=list)
    reroutes: list[tuple[int, str, bytes]] = field(default_factory=list)
    scores: list[tuple[str, bytes]] = field(default_factory=list)
    alerts: list[tuple[str, bytes]] = field(default_factory=list)
    produced_at: list[float] = field(default_factory=list)
    # journey_id -> (version, its current signals by id): lets the checkpoint correct
    # signals a replay after a crash left stored otherwise (`pipeline.stream.reconcile`).
    signal_sets: dict[str, SignalSet] = field(default_factory=dict)
    # event_id -> (customer_id, journey_id): stored touchpoints moved to another journey
    # (the engine's `Changes.moved`; `sink.move_touchpoints` moves their rows).
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)
    # With `process(..., build_rows=False)`: the batch's journey and signal states, not yet
    # built into rows, scores and signal sets (the runtime builds them per checkpoint).
    latest: Latest = field(default_factory=Latest)

    def add_row(self, table: str, row: Row) -> None:
        self.rows.setdefault(table, []).append(row)


class Unsettled(Exception):
    """A book's catch-up raised in `JourneyProcessor.settle` (the cause): its key, and the
    position of its last touchpoint, the message the caller may set aside."""

    def __init__(self, key: str, at: Position, output: Output) -> None:
        super().__init__(
            f"catching up {key} (last touchpoint {at.topic}-{at.partition}@{at.offset})"
        )
        # What the books caught up before it (and its own steps before the failure)
        # caused: the books changed, so it must be stored unless the caller reads again.
        self.key, self.at, self.output = key, at, output


class JourneyProcessor:
    def __init__(
        self,
        model: ScoreModel,
        validator: Validator,
        books: BookCache,
        partition_for: Callable[[str], int],
        *,
        touchpoints_topic: str,
        alert_horizon_s: float,
        dedup: RecentEventIds,
        metrics: Metrics,
        alert_act_within_s: float = 86_400.0,
        ledger: ErasureLedger | None = None,
    ) -> None:
        self.model = model
        # Erased customers (`journeys erase`): their events are dropped wherever they are
        # read again (a replay, the routed topic), so history never brings them back.
        self.ledger = ledger if ledger is not None else ErasureLedger(None)
        self.validator = validator
        self.books = books
        self.partition_for = partition_for
        self.touchpoints_topic = touchpoints_topic
        self.alert_horizon_s = alert_horizon_s
        self.act_within = timedelta(seconds=alert_act_within_s)
        self.dedup = dedup
        self.metrics = metrics
        self.clocks = PartitionClocks()
        self.wakeups = Wakeups()
        self.customers = CustomerIndex()
        self._alerted: OrderedDict[str, None] = OrderedDict()
        # partition -> book key -> the position of the book's last touchpoint: books that
        # `process(..., settle=False)` left to `settle`, in the order first noted.
        self._unsettled: dict[int, dict[str, Position]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        books: BookCache,
        partition_for: Callable[[str], int],
        metrics: Metrics,
        model: ScoreModel | None = None,
        ledger: ErasureLedger | None = None,
    ) -> JourneyProcessor:
        """The processor as the operator's JOURNEYS_* settings configure it: the worker's,
        and the offline one's (`pipeline.stream.offline`), so both write the same rows.
        `model` None: the settings' score model file, else the built-in one."""
        if model is None:
            model = load_score_model(settings.score_model_path)
        window = timedelta(hours=settings.dedup_window_hours)
        return cls(
            model,
            Validator.from_settings(settings),
            books,
            partition_for,
            touchpoints_topic=settings.topic_touchpoints,
            alert_horizon_s=settings.alert_horizon_hours * 3600,
            alert_act_within_s=settings.alert_act_within_hours * 3600,
            dedup=RecentEventIds(int(window.total_seconds() * 1_000_000), settings.dedup_max_ids),
            metrics=metrics,
            ledger=ledger,
        )

    def reset(self) -> None:
        """Forget all that was derived from input: books in memory, de-dup ids, clocks,
        wake-ups, the customer index, alerts sent. The runtime resets before it reads the
        input again from the last checkpoint (`Runtime._rewind`), as a restarted worker
        would: books are then read from the state table, and a partition's recovery
        restores its clock, wake-ups and customer index from there; the state table holds
        exactly the last checkpoint."""
        self.books.clear()
        self.dedup.clear()
        self.clocks.clear()
        self.wakeups.clear()
        self.customers.clear()
        self._alerted.clear()
        self._unsettled.clear()

    def process(
        self,
        partition: int,
        batch: list[Inbound],
        now: datetime,
        *,
        build_rows: bool = True,
        settle: bool = True,
    ) -> Output:
        """Everything `batch` causes. The journeys' and signals' last states become rows,
        score messages and signal sets here, or with `build_rows=False` are left in
        `Output.latest` for the caller to build later (once for many batches). With
        `settle=False` the books the batch touched are caught up by a later `settle`."""
        out = Output()
        batch_state = out.latest
        counts: Counter[str] = Counter()  # the batch's counts, added to the metrics once
        # The clock before the batch moves it: how far a noted book's deadlines are behind.
        clock_before = self.clocks.now(partition)
        grouped = self._take(partition, batch, now, out, counts)
        last = batch[-1]
        at = Position(last.topic, partition, last.offset, now)
        unsettled = None if settle else self._unsettled.setdefault(partition, {})
        for key, touchpoints in grouped.items():
            self._add_all(partition, key, touchpoints, out, batch_state, counts, unsettled,
                          clock_before)  # fmt: skip
        self._wake(partition, at, out, batch_state, counts)
        if build_rows:
            self._write(out)
        self.metrics.add_all(counts)
        return out

    def unsettled(self) -> list[int]:
        """The partitions with books left to `settle`."""
        return [partition for partition, books in self._unsettled.items() if books]

    def settle(self, partition: int, *, build_rows: bool = True) -> Output:
        """Catch up the books of `partition` that `process(..., settle=False)` left, each
        once, as `process` would have after their last batch (at the position of the book's
        last touchpoint). If a book's catch-up raises, `Unsettled` names its last
        touchpoint and carries what the catch-ups before caused; the books after it stay
        noted for the next `settle`."""
        out = Output()
        counts: Counter[str] = Counter()
        pending = self._unsettled.pop(partition, {})
        keys = iter(list(pending.items()))
        for key, at in keys:
            book = self.books.get(key)
            if book is None:
                continue  # forgotten since (an erasure dropped it)
            try:
                self._catch_up(partition, book, at, out, out.latest, counts)
            except Exception as exc:
                rest = dict(keys)
                if rest:
                    self._unsettled.setdefault(partition, {}).update(rest)
                if build_rows:
                    self._write(out)
                self.metrics.add_all(counts)
                raise Unsettled(key, at, out) from exc
            self.books.touched(partition, key)
        if build_rows:
            self._write(out)
        self.metrics.add_all(counts)
        return out

    def forget_unsettled(self, partition: int) -> None:
        """The partition moved to another worker: its books are not this worker's to settle."""
        self._unsettled.pop(partition, None)

    @staticmethod
    def _write(out: Output) -> None:
        """The batch's last state of each journey and signal as rows and messages."""
        built = out.latest.build()
        out.latest = Latest()
        if built.journey_rows:
            out.rows.setdefault("journeys", []).extend(built.journey_rows)
        if built.signal_rows:
            out.rows.setdefault("journey_signals", []).extend(built.signal_rows)
        out.scores.extend(built.scores)
        out.signal_sets.update(built.signal_sets)

    # --- intake ---------------------------------------------------------------------
    def _take(
        self, partition: int, batch: list[Inbound], now: datetime, out: Output, counts: Counter[str]
    ) -> dict[str, list[tuple[Touchpoint, Position, int]]]:
        """Validate, route and de-duplicate the batch: its new touchpoints of this partition
        by book key, in arrival order, each with its position and event time (epoch us)."""
        grouped: dict[str, list[tuple[Touchpoint, Position, int]]] = {}
        # Bound once for the loop: this runs once per message.
        validate = self.validator.validate
        is_erased = self.ledger.is_erased
        partition_for = self.partition_for
        observe, clock = self.clocks.observe, self.clocks.now
        seen = self.dedup.seen
        produced_at = out.produced_at
        touchpoints_topic = self.touchpoints_topic
        received = routed_in = accepted = ticks = erased = rerouted = duplicates = 0
        for message in batch:
            if message.tick_us is not None:
                ticks += 1
                observe(partition, message.tick_us)
                continue
            topic = message.topic
            fresh = topic == touchpoints_topic
            if fresh:
                received += 1
            else:
                routed_in += 1
            at = Position(topic, partition, message.offset, now)
            result = validate(message.value, now)
            if isinstance(result, Rejection):
                self._reject(message, result, at, fresh, out, counts)
                continue
            if fresh:
                accepted += 1
            if is_erased(result.customer_id):
                erased += 1
                continue
            target = partition_for(result.key)
            if target != partition:
                # Keyed or partitioned otherwise than the contract says: its journey lives
                # elsewhere.
                rerouted += 1
                assert message.value is not None  # accepted: the validator rejects tombstones
                out.reroutes.append((target, result.key, message.value))
                continue
            at_us = to_us(result.occurred_at)
            observe(partition, at_us)
            if seen(partition, result.event_id, at_us, clock(partition)):
                duplicates += 1
                continue
            produced_at.append(message.produced_at)
            key = book_key(result)
            entry = (result, at, at_us)
            touchpoints = grouped.get(key)
            if touchpoints is None:
                grouped[key] = [entry]
            else:
                touchpoints.append(entry)
        for name, count in (
            ("ticks", ticks), ("received", received), ("routed_in", routed_in),
            ("accepted", accepted), ("erased_dropped", erased), ("rerouted", rerouted),
            ("duplicates", duplicates),
        ):  # fmt: skip
            if count:
                counts[name] += count
        return grouped

    def _reject(
        self,
        message: Inbound,
        rejection: Rejection,
        at: Position,
        fresh: bool,
        out: Output,
        counts: Counter[str],
    ) -> None:
        if fresh:
            self.metrics.reject(rejection.code)
        else:  # counted accepted at intake: received = accepted + rejected holds
            counts["routed_rejected"] += 1
        if self._names_erased(message.value):
            counts["erased_dropped"] += 1  # no dead letter keeps their payload
            return
        raw = message.value if message.value is not None else b""  # a tombstone: none
        out.dead_letters.append((raw, at, rejection))
        out.add_row("dead_letters", build.dead_letter_row(raw, rejection, at))

    def _names_erased(self, raw: bytes | None) -> bool:
        """Whether a rejected payload's `customer_id` is an erased customer's."""
        if not self.ledger.hashes or not raw:
            return False
        try:
            customer_id = msgspec.json.decode(raw).get("customer_id")
        except (msgspec.DecodeError, AttributeError):
            return False
        return isinstance(customer_id, str) and self.ledger.is_erased(customer_id)

    # --- journeys -------------------------------------------------------------------
    def _add_all(
        self,
        partition: int,
        key: str,
        touchpoints: list[tuple[Touchpoint, Position, int]],
        out: Output,
        state: Latest,
        counts: Counter[str],
        unsettled: dict[str, Position] | None = None,
        clock_before: int = 0,
    ) -> None:
        """With `unsettled` (the partition's noted books), the book's catch-up is noted
        there instead of run; if it was noted already, its deadlines the clock passed before
        this batch (`clock_before`) are stepped first."""
        book = self.books.get_or_create(touchpoints[0][0])
        if unsettled is not None and (noted := unsettled.get(key)) is not None:
            self._step_deadlines(book, clock_before, noted, out, state, counts)
        if book.by_journey_id and not book.journeys:  # new: the customer has one more
            self.customers.add(partition, book.customer_id, key)
        model = self.model
        rows = out.rows.setdefault("touchpoints", [])
        touchpoint_row = build.touchpoint_row
        for touchpoint, at, at_us in touchpoints:
            changes = add(book, touchpoint, model, at_us)
            if changes.duplicate:
                counts["duplicates"] += 1
                continue
            if changes.too_late:
                counts["too_late"] += 1
            rows.append(touchpoint_row(touchpoint, changes.assignment, at))
            self._collect(changes, at, out, state, book, counts)
        if not rows:  # every one a duplicate: no table without rows
            del out.rows["touchpoints"]
        if unsettled is None:
            self._catch_up(partition, book, touchpoints[-1][1], out, state, counts)
        else:
            unsettled[key] = touchpoints[-1][1]
        self.books.touched(partition, key)

    def _wake(
        self, partition: int, at: Position, out: Output, state: Latest, counts: Counter[str]
    ) -> None:
        for key in self.wakeups.due(partition, self.clocks.now(partition)):
            book = self.books.get(key)
            if book is not None:
                self._catch_up(partition, book, at, out, state, counts)
                self.books.touched(partition, key)
                unsettled = self._unsettled.get(partition)
                if unsettled:
                    unsettled.pop(key, None)  # caught up now: no second time at `settle`

    def _catch_up(
        self,
        partition: int,
        book: JourneyBook,
        at: Position,
        out: Output,
        state: Latest,
        counts: Counter[str],
    ) -> None:
        """Advance the book to the partition clock one deadline at a time.

        Stepping to just past each deadline (not to the clock itself) makes every snapshot
        a function of the events and deadlines alone: a replay whose clock moved in other
        steps writes byte-identical rows. The loop ends because `from_us` and `to_us` are
        exact both ways (`pipeline.journey.events`): each step reads back past its deadline.
        """
        clock_us = self.clocks.now(partition)
        deadline_us = self._step_deadlines(book, clock_us, at, out, state, counts)
        # Every open promise once, for the alerts (those due within the horizon) and for
        # the wake-up (the first alert to come), not one look-up for each.
        promises = (
            self._open_promises(book, clock_us)
            if self.alert_horizon_s * 1_000_000 <= _FAR_US  # else each looks its own up
            else None
        )
        self._alert_due_promises(book, clock_us, at, out, promises)
        wake = self._wake_at(book, clock_us, promises, deadline_us)
        self.wakeups.schedule(partition, book.book_key, wake)

    def _step_deadlines(
        self,
        book: JourneyBook,
        clock_us: int,
        at: Position,
        out: Output,
        state: Latest,
        counts: Counter[str],
    ) -> int | None:
        """Advance the book past each deadline before `clock_us`, one at a time (see
        `_catch_up`); the next deadline, at or after `clock_us`, or None."""
        model = self.model
        while (deadline_us := next_deadline_us(book, model)) is not None:
            if deadline_us >= clock_us:
                break
            changes = advance(book, from_us(deadline_us + 1), model)
            self._collect(changes, at, out, state, book, counts)
        return deadline_us

    def _collect(
        self,
        changes: Changes,
        at: Position,
        out: Output,
        state: Latest,
        book: JourneyBook,
        counts: Counter[str],
    ) -> None:
        state.keep(changes, book.customer_id, book.clock, self.model.version, at)
        for moved in changes.moved:
            out.moved[moved.event_id] = (book.customer_id, moved.journey_id)
        if changes.retracted:
            counts["signals_retracted"] += len(changes.retracted)
        if changes.appeared:
            counts["signals"] += len(changes.appeared)
            for signal in changes.appeared:
                if signal.signal in ALERTING_SIGNALS:
                    context = self._context(book, signal.journey_id)
                    self._alert(build.signal_alert(signal, self.act_within, context), at, out)
        for score in changes.turned_poor:
            context = self._context(book, score.journey_id)
            self._alert(build.turned_poor_alert(score, self.act_within, context), at, out)

    # --- alerts ---------------------------------------------------------------------
    @staticmethod
    def _alert(alert: Row, at: Position, out: Output) -> None:
        """Publish the alert, and store it: the loop-closure figures need every alert."""
        out.alerts.append((alert["department"], build.alert_bytes(alert)))
        out.add_row("alerts", build.alert_row(alert, at))

    @staticmethod
    def _context(book: JourneyBook, journey_id: str) -> Row:
        return journey_context(book, journey_id, from_us(book.clock))

    def _open_promises(self, book: JourneyBook, clock_us: int) -> list[PromiseDue]:
        """Open promises due from the clock on (at most `_FAR_US` later), in due order;
        none when promise alerts are off or the clock has not started."""
        if not self.alert_horizon_s or clock_us < 0:
            return []
        return open_promises(book, from_us(clock_us), _FAR_US / 1_000_000)

    def _alert_due_promises(
        self,
        book: JourneyBook,
        clock_us: int,
        at: Position,
        out: Output,
        promises: list[PromiseDue] | None = None,
    ) -> None:
        """Alert each open promise due within the horizon, once. `promises`: the book's
        `_open_promises` at `clock_us`, if the caller has them."""
        if not self.alert_horizon_s or clock_us < 0:
            return
        if promises is None:
            promises = open_promises(book, from_us(clock_us), self.alert_horizon_s)
        horizon = timedelta(seconds=self.alert_horizon_s)
        # As `promises_due(book, now, horizon)`: due at most `horizon` after the clock.
        # `due_at` is the promise's deadline (`from_us` and `to_us` are exact both ways).
        end_us = clock_us + round(self.alert_horizon_s * 1_000_000)
        for due in promises:
            if to_us(due.due_at) > end_us:
                break  # in due order: the rest are later still
            ref = f"{due.journey_id}/{due.promise_id}/{due.event_id}"
            if ref not in self._alerted:
                self._alerted[ref] = None
                if len(self._alerted) > 100_000:  # bounded: a restart may re-alert once
                    self._alerted.popitem(last=False)
                context = self._context(book, due.journey_id)
                self._alert(build.promise_due_alert(due, horizon, context), at, out)

    def next_wake(
        self, book: JourneyBook, clock_us: int, promises: list[PromiseDue] | None = None
    ) -> int | None:
        """When the book next needs a catch-up: its next deadline or its next promise alert.
        `promises`: the book's `_open_promises` at `clock_us`, if the caller has them."""
        return self._wake_at(book, clock_us, promises, next_deadline_us(book, self.model))

    def _wake_at(
        self,
        book: JourneyBook,
        clock_us: int,
        promises: list[PromiseDue] | None,
        deadline_us: int | None,
    ) -> int | None:
        """`next_wake` with the book's `next_deadline_us` known."""
        moments: list[int] = []
        if deadline_us is not None:
            moments.append(deadline_us)
        if self.alert_horizon_s and clock_us > 0:
            horizon_us = int(self.alert_horizon_s * 1_000_000)
            if promises is None:
                promises = self._open_promises(book, clock_us)
            for due in promises:
                alert_at = to_us(due.due_at) - horizon_us
                if alert_at >= clock_us:
                    moments.append(alert_at)
        return min(moments) if moments else None
