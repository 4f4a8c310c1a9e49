"""Intake: Faust's consumer, handing whole fetched batches of the journey topics to the worker.

Faust delivers every message through its conductor, a channel queue, a stream and an event
object, then tracks its ack: about 80 us of the event loop per message on a 2-core machine,
more than the whole budget of a 10,000 events/s worker. `BatchConsumer` keeps everything
else Faust's consumer does (group membership, the partition assignor, rebalance callbacks,
flow control, pausing during table recovery, the seek to committed offsets after a
rebalance) and replaces only its drain loop: records of the worker's own topics go to
`on_batch` as one mapping per fetch; any other topic (the state table's changelog while it
recovers) still goes through Faust's per-message path.

The consumer waits at most `FETCH_MAX_WAIT_MS` for a fetch to fill (Faust fixes 1,500 ms):
at 5,000 events/s with 1,500 ms, fetches brought records up to 2 s old, more than a second of
input at once, and every event waited for that on top of its checkpoint.

Offsets of the batch topics are not acked through Faust: the checkpoint commits them
itself once their results are stored (`pipeline.stream.checkpoint`), so Faust's
`wait_empty` has nothing to wait for at a rebalance or a stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger("pipeline.stream")

# TP -> aiokafka ConsumerRecords of one fetch, in offset order.
Fetched = Mapping[Any, list[Any]]
BatchHandler = Callable[[Fetched], Awaitable[None]]
# The broker answers a fetch once it has data or after this wait (aiokafka's default: 500).
FETCH_MAX_WAIT_MS = 100


class BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with a fetch wait fit for a latency target."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes fetch_max_wait_ms=1500 and offers no setting for it; aiokafka keeps
        # the value only here, read by its fetcher when it builds each fetch request.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose drain loop hands the worker whole batches."""

    batch_topics: frozenset[str] = frozenset()
    on_batch: BatchHandler | None = None
    # Closed at a stop: records fetched afterwards are dropped unprocessed and uncommitted,
    # so the next owner of the partition reads them again.
    intake_open: bool = True
    handling: asyncio.Future[None] | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def close_intake(self) -> None:
        self.intake_open = False

    async def _drain_messages(self, fetcher: Any) -> None:  # faust: runs as the Fetcher
        should_stop = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (should_stop() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                # getmany can return at once many times in a row: let the loop breathe.
                await asyncio.sleep(0)
                if records and not self.should_stop:
                    await self._deliver(records, active)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("consumer stopped while the worker stops")
                return
            raise
        finally:
            fetcher.set_shutdown()

    async def _deliver(self, records: Mapping[Any, list[Any]], active: Any) -> None:
        generation = self.app.consumer_generation_id
        ours: dict[Any, list[Any]] = {}
        dropped: dict[Any, list[Any]] = {}
        for tp, batch in records.items():
            if not batch:
                continue
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                dropped[tp] = batch  # paused since the fetch (a rebalance or a recovery began)
                continue
            if tp.topic in self.batch_topics:
                ours[tp] = batch
                continue
            for record in batch:
                await self.callback(self._to_message(tp, record))
            self._read_offset[tp] = batch[-1].offset
        handler = self.on_batch
        if ours and (
            not self.intake_open
            or handler is None
            or generation != self.app.consumer_generation_id  # a rebalance began
        ):
            dropped.update(ours)
            ours = {}
        if dropped and self.intake_open:
            await self._fetch_again(dropped)
        if not ours or handler is None:
            return
        self.handling = asyncio.ensure_future(handler(ours))
        try:
            # Shielded: a stop cancels the fetcher, but a batch half taken into the journey
            # state must be completed; the stop then stores it or leaves it to the replay.
            await asyncio.shield(self.handling)
        finally:
            for tp, batch in ours.items():
                self._read_offset[tp] = batch[-1].offset

    async def _fetch_again(self, dropped: Mapping[Any, list[Any]]) -> None:
        """Seek each partition of records fetched but not handed over back to the first.

        The fetch moved the consumer's position past them, and nothing else is sure to move
        it back: the seek to committed offsets after a recovery skips a partition with no
        committed offset (aiokafka seeks only to an offset above 0), so the next fetch read
        on after them and the next checkpoint committed past them, a loss. (aiokafka returns
        records of every partition, paused ones too, when the set of active partitions it is
        given empties during the fetch, as it does for a moment between a recovery's end and
        the resume of the stream partitions.) A partition whose position something else
        moved since (a seek to committed offsets, a new assignment) is left as it is: that
        position is where its replay starts.
        """
        thread = self._thread  # aiokafka's consumer is not thread-safe: seek in its thread
        positions = {tp: (batch[0].offset, batch[-1].offset) for tp, batch in dropped.items()}
        try:
            seeks = await thread.call_thread(_seek_back, thread._ensure_consumer(), positions)
        except self.consumer_stopped_errors:
            return
        if seeks:
            log.info(
                "fetched records not taken (partition paused or moving); read again from %s",
                {f"{tp.topic}-{tp.partition}": o for tp, o in seeks.items()},
            )

    async def wait_handled(self) -> None:
        """Wait until the batch being handed over (if any) is in the worker's buffers."""
        if self.handling is not None and not self.handling.done():
            await asyncio.wait([self.handling])


async def _seek_back(consumer: Any, positions: Mapping[Any, tuple[int, int]]) -> dict[Any, int]:
    """In the consumer's thread: seek each partition to `first` if its position is still
    past `last` (nothing moved it since the fetch); the seeks done."""
    subscription = consumer._subscription
    seeks = {}
    for tp, (first, last) in positions.items():
        if not subscription.is_assigned(tp):
            continue
        state = subscription._assigned_state(tp)
        if state.has_valid_position and state.position > last:
            consumer.seek(tp, first)
            seeks[tp] = first
    return seeks
