"""The checkpoint's Kafka producer, on an event loop of its own thread.

A produce request's round trip goes through a few turns of its event loop (the sender
wakes, the request is written, the response read, the futures resolved, the next batch of
a topic-partition taken: aiokafka sends one at a time per partition). On the worker's loop
each turn waited for the slice of input being processed (`runtime.SLICE`), so a
checkpoint's sends (state-table changelog, score snapshots, alerts) took 1.5-3 s while
input was processed, against 0.5 s once it was not; the checkpoint, and every event in it,
waited for them. Here the producer's turns wait only for the interpreter's thread switch.

The thread's producer has the Faust producer's settings (idempotent, acks=all, the batch
and request sizes); Faust's own producer stays for what Faust sends itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("pipeline.stream")
T = TypeVar("T")


class ProducerThread:
    """An aiokafka producer running in a thread with its own event loop."""

    def __init__(self, new_producer: Callable[[], Any], name: str = "journeys-producer") -> None:
        self._new_producer = new_producer  # called in the thread: aiokafka binds its loop
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.producer: Any = None

    @property
    def running(self) -> bool:
        return self._loop is not None and self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        """Start the thread and its producer (connects to the broker); raise what that raised."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_producer())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        await asyncio.wrap_future(started)
        self._loop = loop

    async def _start_producer(self) -> None:
        self.producer = self._new_producer()
        await self.producer.start()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the producer's loop and return its result; cancelling this cancels it."""
        if not self.running:
            work.close()
            raise RuntimeError("the producer thread is not running")
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def stop(self, timeout: float) -> None:
        """Stop the producer and the thread, within `timeout` (the thread is a daemon: one
        still stuck on an unreachable broker does not hold the process's exit). Nothing is
        left to flush: every checkpoint awaited its sends."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        self._loop = None  # no more sends
        try:
            stopping = asyncio.run_coroutine_threadsafe(self.producer.stop(), loop)
            await asyncio.wait_for(asyncio.wrap_future(stopping), timeout)
        except Exception as exc:  # a timeout, or the broker gone: the process exits anyway
            log.warning("stop: the checkpoint's producer did not stop cleanly: %r", exc)
        finally:
            loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, max(timeout, 0.1))
