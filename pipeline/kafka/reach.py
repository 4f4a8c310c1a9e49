"""Waiting for Kafka before a long-running service starts.

A worker started before its broker (a host reboot, a compose stack coming up, a developer
who has not run `journeys kafka start` yet) waits for the broker instead of dying with a
traceback. `wait_until_reachable` asks again with a growing pause (up to `most_pause`),
says the first failure at once and then one line every `say_every` seconds with how long
the broker has been unreachable and why, and says when it answers after a wait. It
returns the address that answered: `address` is asked at every attempt, so a local broker
that starts on another port than the one known at first is found.

`answers` is the probe: one metadata round trip with the service's own security options.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

Probe = Callable[[str], Awaitable[None]]


class Unanswered(Exception):
    """Kafka did not answer a metadata request; the message says why, in one line."""


async def answers(bootstrap_servers: str, timeout: float, **options: Any) -> None:
    """Return once a broker of `bootstrap_servers` answers a metadata request within
    `timeout` seconds; raise Unanswered with the client's own reason otherwise."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import KafkaError

    # aiokafka logs the reason of each failed node (refused, timed out, TLS) at ERROR and
    # raises a generic "Unable to bootstrap"; keep its words for our one line instead.
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=max(int(timeout * 1000), 1),
        client_id="journeys-reach",
        **options,
    )
    reasons = _Reasons()
    client_log = logging.getLogger("aiokafka")
    client_log.addHandler(reasons)
    propagate, client_log.propagate = client_log.propagate, False
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
    except (KafkaError, OSError, TimeoutError) as error:
        raise Unanswered(reasons.last or str(error) or type(error).__name__) from error
    finally:
        client_log.removeHandler(reasons)
        client_log.propagate = propagate
        await client.close()


class _Reasons(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


async def wait_until_reachable(
    address: Callable[[], str],
    probe: Probe,
    say: Callable[[str], None],
    *,
    hint: str = "",
    first_pause: float = 0.5,
    most_pause: float = 5.0,
    say_every: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> str:
    """The first address that answers `probe`; waits as long as it takes (cancel to stop).

    Says nothing when Kafka answers at once. Otherwise: the first failure at once, then one
    line every `say_every` seconds (or at once when the address changes), each with the
    outage's duration so far and the last reason; and a last line when Kafka answers. `hint`
    (what to check) ends the first line.
    """
    pause, down_since, said_at, said = first_pause, None, 0.0, ""
    while True:
        where = address()
        try:
            await probe(where)
        except Unanswered as error:
            now = clock()
            if down_since is None:
                down_since = now
            reason = str(error)
            if where != said or now - said_at >= say_every:
                if not said:
                    line = f"Kafka at {where} does not answer ({reason}); waiting for it"
                    say(f"{line}; {hint}" if hint else line)
                else:
                    waited = _duration(now - down_since)
                    say(f"Kafka at {where} still does not answer ({reason}); waiting for {waited}")
                said, said_at = where, now
            await sleep(pause)
            pause = min(pause * 2, most_pause)
            continue
        if down_since is not None:
            say(f"Kafka at {where} answers, after {_duration(clock() - down_since)}")
        return where


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
