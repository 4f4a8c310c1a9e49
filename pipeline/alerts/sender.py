"""One webhook request, and one alert's attempts until it is delivered or given up (I/O).

`WebhookSender.send` makes one signed POST and describes the answer (or why there was
none); `deliver` runs the retry schedule around it. Redirects are not followed: a POST
redirected loses its body in most clients, and a receiver that moved should be
reconfigured, not silently chased.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from pipeline import __version__
from pipeline.alerts.payload import Alert
from pipeline.alerts.schedule import RetrySchedule, Verdict, retry_after_seconds, verdict
from pipeline.alerts.signing import signed_headers
from pipeline.alerts.webhooks import Webhook

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


async def deliver(
    sender: WebhookSender,
    webhook: Webhook,
    alert: Alert,
    schedule: RetrySchedule,
    sleep: Sleep = asyncio.sleep,
    retrying: Callable[[], object] = lambda: None,
) -> Outcome:
    """Try until delivered, refused, or out of attempts; the reason says which and why.
    `retrying` is called before each attempt after the first (the retries' counter)."""
    attempt = 0
    while True:
        attempt += 1
        if attempt > 1:
            retrying()
        answer = await sender.send(webhook, alert, attempt)
        judged = Verdict.RETRY if answer.status is None else verdict(answer.status)
        if judged is Verdict.DELIVERED:
            return Outcome(True, attempt, last_status=answer.status)
        where = webhook.shown_url
        if judged is Verdict.REFUSED:
            reason = (f"{where} refused the alert ({answer.describe()}); not retried: the "
                      "receiver refuses the request itself")  # fmt: skip
            return Outcome(False, attempt, reason, answer.status)
        if schedule.last(attempt):
            reason = f"{where}: {answer.describe()}, after {attempt} attempts (the last)"
            return Outcome(False, attempt, reason, answer.status)
        await sleep(schedule.wait(attempt, answer.retry_after))
