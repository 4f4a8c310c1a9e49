"""Waiting for Kafka before the worker starts: what is said, how often, and when it ends.

The clock and the pauses are simulated (an hour of outage in no time); the probe fails as
long as the test says. The real probe against a real broker, and a stop while waiting, are
in tests/integration/test_worker_waits_for_kafka.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from pipeline.kafka.reach import Unanswered, wait_until_reachable


class Outage:
    """A broker down until `up_at` (simulated seconds), on an address that may move."""

    def __init__(self, up_at: float, reason: Callable[[float], str] = lambda now: "refused"):
        self.now, self.up_at, self.reason = 0.0, up_at, reason
        self.address = "127.0.0.1:9092"
        self.probed: list[tuple[float, str]] = []
        self.pauses: list[float] = []
        self.said: list[tuple[float, str]] = []

    async def probe(self, address: str) -> None:
        self.probed.append((self.now, address))
        if self.now < self.up_at:
            raise Unanswered(self.reason(self.now))

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def say(self, line: str) -> None:
        self.said.append((self.now, line))

    def wait(self, **options: float) -> str:
        return asyncio.run(
            wait_until_reachable(
                lambda: self.address, self.probe, self.say, hint="check the address",
                clock=lambda: self.now, sleep=self.sleep, **options,
            )
        )  # fmt: skip


def test_a_broker_that_answers_at_once_is_not_mentioned() -> None:
    outage = Outage(up_at=0)
    assert outage.wait() == "127.0.0.1:9092"
    assert outage.said == [] and outage.pauses == [] and len(outage.probed) == 1


def test_an_hour_of_outage_is_said_at_once_then_every_30_s_with_its_duration() -> None:
    outage = Outage(up_at=3600)
    assert outage.wait() == "127.0.0.1:9092"
    first, *repeats, last = outage.said
    assert first == (0.0, "Kafka at 127.0.0.1:9092 does not answer (refused); waiting for "
                          "it; check the address")  # fmt: skip
    # Bounded: one line per 30 s at most, however often it asks (every 5 s here).
    assert 115 <= len(repeats) <= 120
    times = [first[0]] + [at for at, _ in repeats]
    assert all(later - earlier >= 30 for earlier, later in itertools.pairwise(times))
    line = repeats[-1][1]
    assert line.startswith("Kafka at 127.0.0.1:9092 still does not answer (refused); waiting "
                           "for 59 min")  # fmt: skip
    assert "hint" not in line and "check the address" not in line
    # Attempts at 0, 0.5, 1.5, 3.5, 7.5 and then every 5 s: the first at 30 s or more is 32.5.
    assert repeats[0] == (32.5, "Kafka at 127.0.0.1:9092 still does not answer (refused); "
                                "waiting for 32 s")  # fmt: skip
    assert last[1] == "Kafka at 127.0.0.1:9092 answers, after 1 h 0 min"


def test_the_pause_between_attempts_grows_to_its_most() -> None:
    outage = Outage(up_at=60)
    outage.wait(first_pause=0.5, most_pause=5)
    assert outage.pauses[:5] == [0.5, 1, 2, 4, 5]
    assert set(outage.pauses[4:]) == {5}
    # Asked again within a pause of its return: a broker that comes up is found quickly.
    assert outage.probed[-1][0] - outage.up_at < 5


def test_a_new_address_is_said_at_once_and_the_answering_address_returned() -> None:
    outage = Outage(up_at=20, reason=lambda now: "refused" if now < 10 else "timed out")
    moved = "127.0.0.1:40001"

    async def probe(address: str) -> None:
        if outage.now >= 15:
            outage.address = moved  # the local broker started, on a port of its own
        await Outage.probe(outage, address)

    outage.probe = probe  # type: ignore[method-assign]
    assert outage.wait(most_pause=1) == moved
    assert outage.said == [
        (0, "Kafka at 127.0.0.1:9092 does not answer (refused); waiting for it; check the "
            "address"),
        # A new reason waits for the next line; a new address does not: the first attempt
        # after the move (seen at 15.5, while asking the old address) is at 16.5.
        (16.5, f"Kafka at {moved} still does not answer (timed out); waiting for 16 s"),
        (20.5, f"Kafka at {moved} answers, after 20 s"),
    ]  # fmt: skip


def test_a_stop_while_waiting_cancels_the_wait() -> None:
    async def never(address: str) -> None:
        raise Unanswered("refused")

    async def main() -> None:
        waiting = asyncio.ensure_future(
            wait_until_reachable(lambda: "x:1", never, lambda line: None, first_pause=0.01)
        )
        await asyncio.sleep(0.05)
        waiting.cancel()
        await waiting

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
