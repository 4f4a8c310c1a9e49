"""Whether a department's receiver is down: a circuit breaker per webhook. Pure.

A receiver that does not answer at all (connection refused, timeout, TLS failure) is
usually down as a whole, not for one alert: after `threshold` attempts in a row without an
HTTP answer the circuit opens. While it is open, at most one attempt at a time goes out as
a probe, at most one every `probe_interval` seconds; an attempt that comes while the probe
is in flight waits for its outcome, and any other attempt fails at once against the known
outage, without a connection (it still counts as one of its alert's attempts, so the retry
schedule and the dead letter after the last attempt stay as they were). The first probe,
or any request, that gets an HTTP answer (whatever its status: the receiver is up) closes
the circuit. A dead receiver then costs a connection a second, not one per alert attempt.

Times are the caller's monotonic seconds; the asyncio side (waiting for a probe's outcome,
logging the transitions) is `pipeline.alerts.sender.Circuit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Admission(Enum):
    SEND = "send"  # closed: the attempt goes out
    PROBE = "probe"  # open: this attempt is the one probe (record(..., probe=True) after)
    WAIT = "wait"  # open, a probe in flight: ask again once it has ended
    REFUSE = "refuse"  # open, no probe due: the attempt fails against the outage, unsent


class Transition(Enum):
    OPENED = "opened"
    CLOSED = "closed"


@dataclass
class CircuitBreaker:
    threshold: int  # attempts in a row without an HTTP answer that open it; 0: never opens
    probe_interval: float  # seconds from the opening or the last probe's end to the next probe
    failures: int = 0  # attempts in a row without an HTTP answer
    opened_at: float | None = None  # None: closed
    probing: bool = False  # a probe is in flight
    probed_at: float = 0.0  # when the circuit opened or the last probe ended
    refused: int = 0  # attempts failed against the outage since it opened

    def __post_init__(self) -> None:
        if self.threshold < 0 or not self.probe_interval > 0:
            raise ValueError("threshold must be >= 0 and probe_interval > 0")

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def admit(self, now: float) -> Admission:
        """What an attempt starting at `now` does."""
        if self.opened_at is None:
            return Admission.SEND
        if self.probing:
            return Admission.WAIT
        if now - self.probed_at >= self.probe_interval:
            self.probing = True
            return Admission.PROBE
        self.refused += 1
        return Admission.REFUSE

    def record(self, answered: bool, now: float, *, probe: bool = False) -> Transition | None:
        """The outcome of an attempt that went out (SEND or PROBE): `answered` when the
        receiver gave any HTTP answer. Returns the transition it caused, if any."""
        if probe:
            self.probing = False
            self.probed_at = now
        if answered:
            self.failures = 0
            if self.opened_at is None:
                return None
            self.opened_at = None
            self.probing = False
            return Transition.CLOSED
        self.failures += 1
        if self.opened_at is None and self.threshold and self.failures >= self.threshold:
            self.opened_at = self.probed_at = now
            self.probing = False
            self.refused = 0
            return Transition.OPENED
        return None

    def abandon(self) -> None:
        """A probe that ended without an outcome (its task was cancelled): another may go."""
        self.probing = False
