"""Intake: Faust's consumer, handing whole fetched batches of the journey topics to the worker.

Faust delivers every message through its conductor, a channel queue, a stream and an event
object, then tracks its ack: about 80 us of the event loop per message on a 2-core machine,
more than the whole budget of a 10,000 events/s worker. `BatchConsumer` keeps everything
else Faust's consumer does (group membership, the partition assignor, rebalance callbacks,
flow control, pausing during table recovery, the seek to committed offsets after a
rebalance) and replaces only its drain loop: records of the worker's own topics go to
`on_batch` as one mapping per fetch; any other topic (the state table's changelog while it
recovers) still goes through Faust's per-message path.

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


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose drain loop hands the worker whole batches."""

    batch_topics: frozenset[str] = frozenset()
    on_batch: BatchHandler | None = None
    # Closed at a stop: records fetched afterwards are dropped unprocessed and uncommitted,
    # so the next owner of the partition reads them again.
    intake_open: bool = True
    handling: asyncio.Future[None] | None = None

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
        for tp, batch in records.items():
            if not batch:
                continue
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue  # paused since the fetch (a rebalance or a recovery began)
            if tp.topic in self.batch_topics:
                ours[tp] = batch
                continue
            for record in batch:
                await self.callback(self._to_message(tp, record))
            self._read_offset[tp] = batch[-1].offset
        if not ours or not self.intake_open or self.on_batch is None:
            return
        if generation != self.app.consumer_generation_id:
            return  # a rebalance began: the recovery seeks back to the committed offsets
        self.handling = asyncio.ensure_future(self.on_batch(ours))
        try:
            # Shielded: a stop cancels the fetcher, but a batch half taken into the journey
            # state must be completed; the stop then stores it or leaves it to the replay.
            await asyncio.shield(self.handling)
        finally:
            for tp, batch in ours.items():
                self._read_offset[tp] = batch[-1].offset

    async def wait_handled(self) -> None:
        """Wait until the batch being handed over (if any) is in the worker's buffers."""
        if self.handling is not None and not self.handling.done():
            await asyncio.wait([self.handling])
