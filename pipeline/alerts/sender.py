"""One webhook request, and one alert's attempts until it is delivered or given up (I/O).

`WebhookSender.send` makes one signed POST and describes the answer (or why there was
none); `deliver` runs the retry schedule around it, through the department's `Circuit`
(`pipeline.alerts.breaker`): while its receiver is down, an attempt fails at once without a
connection unless it is the one probe. Redirects are not followed: a POST redirected loses
its body in most clients, and a receiver that moved should be reconfigured, not silently
chased.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import aiohttp

from pipeline import __version__
from pipeline.alerts.breaker import Admission, CircuitBreaker, Transition
from pipeline.alerts.payload import Alert
from pipeline.alerts.schedule import RetrySchedule, Verdict, retry_after_seconds, verdict
from pipeline.alerts.signing import signed_headers
from pipeline.alerts.webhooks import Webhook

log = logging.getLogger("pipeline.alerts")
BODY_KEPT = 2048  # bytes of a receiver's answer kept for a reason or `alerts test`


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (connection refused, timeout, TLS)
    body: bytes
    seconds: float
    error: str = ""
    retry_after: float | None = None

    def describe(self) -> str:
        if self.status is None:
            return self.error
        text = self.body[:200].decode("utf-8", "replace").strip()
        return f"HTTP {self.status}" + (f": {text}" if text else "")


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    reason: str = ""
    last_status: int | None = None
    outage: bool = False  # given up while its department's receiver was known to be down


class WebhookSender:
    def __init__(self, timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.timeout = timeout
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": f"journeys-alerts/{__version__}"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, webhook: Webhook, alert: Alert, attempt: int) -> Answer:
        assert self._session is not None, "WebhookSender.start() first"
        headers = signed_headers(
            webhook.secret.get_secret_value(), int(self.clock()), alert.body,
            alert_id=alert.alert_id, kind=alert.kind, attempt=attempt,
        )  # fmt: skip
        started = time.perf_counter()
        try:
            async with self._session.post(
                webhook.url, data=alert.body, headers=headers, allow_redirects=False
            ) as response:
                body = await response.content.read(BODY_KEPT)
                return Answer(
                    response.status, body, time.perf_counter() - started,
                    retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                )  # fmt: skip
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s (JOURNEYS_ALERT_DELIVERY_TIMEOUT_SECONDS)"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return Answer(None, b"", time.perf_counter() - started, error=error)


Sleep = Callable[[float], Awaitable[object]]


class Circuit:
    """A department's `CircuitBreaker` around its webhook requests: attempts wait here for a
    probe's outcome, and each opening and closing is logged once and reported to
    `changed(open)` (the metrics' gauge)."""

    def __init__(
        self, department: str, breaker: CircuitBreaker,
        changed: Callable[[bool], object] = lambda _open: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.department = department
        self.breaker = breaker
        self.changed = changed
        self.clock = clock
        self.since = ""  # when it opened, UTC, for reasons and log lines
        self.cause = ""  # the last attempt's error before it opened
        self.dead_lettered = 0  # alerts given up while open
        self._probe_ended = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self.breaker.is_open

    async def attempt(self, send: Callable[[], Awaitable[Answer]]) -> Answer | None:
        """`send()`'s answer, or None: the attempt failed against the known outage and
        nothing was sent."""
        while True:
            admission = self.breaker.admit(self.clock())
            if admission is Admission.WAIT:
                ended = self._probe_ended
                if ended.is_set():  # cannot be (a probe in flight has its event unset)
                    return None  # but never spin on it
                await ended.wait()  # then ask again: closed, refused, or the next probe
                continue
            if admission is Admission.REFUSE:
                return None
            probe = admission is Admission.PROBE
            if probe:
                self._probe_ended = asyncio.Event()
            try:
                answer = await send()
            except BaseException:
                if probe:
                    self.breaker.abandon()
                    self._probe_ended.set()
                raise
            transition = self.breaker.record(answer.status is not None, self.clock(), probe=probe)
            if probe:
                self._probe_ended.set()
            if transition is not None:
                self._changed(transition, answer)
            return answer

    def outage(self) -> str:
        threshold = self.breaker.threshold
        return (f"receiver down since {self.since} ({threshold} attempts in a row without an "
                f"HTTP answer, the last: {self.cause}; circuit open)")  # fmt: skip

    def _changed(self, transition: Transition, answer: Answer) -> None:
        if transition is Transition.OPENED:
            self.since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.cause = answer.describe()
            self.dead_lettered = 0
            log.warning("webhook of %s down: %s; one probe at a time, at most one every %g s, "
                        "other attempts fail at once without a connection",
                        self.department, self.outage(),
                        self.breaker.probe_interval)  # fmt: skip
            self.changed(True)
        else:
            log.warning("webhook of %s answers again (%s): circuit closed, down since %s; "
                        "%d attempts failed at once meanwhile, %d alerts dead-lettered",
                        self.department, answer.describe(), self.since,
                        self.breaker.refused, self.dead_lettered)  # fmt: skip
            self.changed(False)


async def deliver(
    sender: WebhookSender,
    webhook: Webhook,
    alert: Alert,
    schedule: RetrySchedule,
    sleep: Sleep = asyncio.sleep,
    retrying: Callable[[], object] = lambda: None,
    circuit: Circuit | None = None,
    short_circuited: Callable[[], object] = lambda: None,
) -> Outcome:
    """Try until delivered, refused, or out of attempts; the reason says which and why.
    `retrying` is called before each attempt after the first (the retries' counter),
    `short_circuited` for each attempt that failed against an open `circuit`, unsent."""
    attempt = 0
    where = webhook.shown_url
    while True:
        attempt += 1
        if attempt > 1:
            retrying()
        if circuit is None:
            answer = await sender.send(webhook, alert, attempt)
        else:
            sent = await circuit.attempt(partial(sender.send, webhook, alert, attempt))
            if sent is None:  # failed against the known outage: nothing signed or sent
                short_circuited()
                if schedule.last(attempt):
                    circuit.dead_lettered += 1
                    reason = (f"{where}: not sent, {circuit.outage()}, after {attempt} "
                              "attempts (the last)")  # fmt: skip
                    return Outcome(False, attempt, reason, None, outage=True)
                await sleep(schedule.wait(attempt))
                continue
            answer = sent
        judged = Verdict.RETRY if answer.status is None else verdict(answer.status)
        if judged is Verdict.DELIVERED:
            return Outcome(True, attempt, last_status=answer.status)
        if judged is Verdict.REFUSED:
            reason = (f"{where} refused the alert ({answer.describe()}); not retried: the "
                      "receiver refuses the request itself")  # fmt: skip
            return Outcome(False, attempt, reason, answer.status)
        if schedule.last(attempt):
            described = answer.describe()
            outage = circuit is not None and circuit.is_open
            if circuit is not None and outage:  # the probe's own failure, or one sent before
                circuit.dead_lettered += 1
                described = f"{described}; {circuit.outage()}"
            reason = f"{where}: {described}, after {attempt} attempts (the last)"
            return Outcome(False, attempt, reason, answer.status, outage)
        await sleep(schedule.wait(attempt, answer.retry_after))
