"""The Python emitter: how a department's system sends touchpoints (kafka-python underneath).

    with Emitter.from_settings(load_settings()) as emitter:
        for event in events:
            emitter.emit(event)          # validated first; a Rejection is returned, not sent
    print(emitter.report.summary())

Every event is checked against the contract before it leaves the department, so bad events
are refused at the source with the same reason the pipeline would give. Valid ones go out
exactly as given (the bytes the department produced), keyed per contract (journey_id, else
customer_id) so one journey's events stay in order on one partition. The producer is
idempotent with acks=all: a retry after a network error never duplicates a message.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.util import ensure_valid_topic_name

from pipeline.contract import Rejection, Touchpoint, Validator, encode_touchpoint
from pipeline.contract.rules import readable_department

if TYPE_CHECKING:
    from pipeline.settings import Settings

Event = bytes | str | Mapping[str, Any] | Touchpoint

# Larger batches than kafka-python's 16 KiB default: touchpoints are ~300 bytes and a
# department backfill sends many at once; 20 ms of linger costs nothing for a batch job.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 20,
    "batch_size": 256 * 1024,
    "max_in_flight_requests_per_connection": 5,
}


@dataclass
class EmitReport:
    """What happened to the events handed to an emitter."""

    accepted: int = 0  # passed validation (and were handed to the producer unless dry run)
    sent: int = 0  # acknowledged by the brokers
    failed: int = 0  # valid, but the brokers did not acknowledge them
    refused: Counter[str] = field(default_factory=Counter)  # rejection code -> count
    first_refusals: list[tuple[int, Rejection]] = field(default_factory=list)
    first_failures: list[str] = field(default_factory=list)
    keep: int = 20  # how many refusals and failures to remember in detail

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def refuse(self, position: int, rejection: Rejection) -> None:
        self.refused[rejection.code] += 1
        if len(self.first_refusals) < self.keep:
            self.first_refusals.append((position, rejection))

    def summary(self) -> str:
        reasons = ", ".join(f"{code}: {n}" for code, n in self.refused.most_common())
        refused = f"{self.refused_total} refused" + (f" ({reasons})" if reasons else "")
        return f"{self.sent} sent, {refused}, {self.failed} failed"


class Emitter:
    """Validate, key and send touchpoints to Kafka; count what was sent and what refused."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        validator: Validator | None = None,
        dry_run: bool = False,
        **producer_options: Any,
    ) -> None:
        ensure_valid_topic_name(topic)  # ValueError naming the topic, before any connection
        self.topic = topic
        self.validator = validator or Validator()
        self.report = EmitReport()
        self._position = 0
        self._lock = threading.Lock()  # delivery callbacks run on the producer's I/O thread
        self._producer: KafkaProducer | None = None
        self._broken: Exception | None = None  # set when the producer refused to send
        if not dry_run:
            options = PRODUCER_DEFAULTS | producer_options
            self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **options)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, topic: str | None = None, dry_run: bool = False
    ) -> Emitter:
        """An emitter for the configured brokers (security options included)."""
        return cls(
            settings.bootstrap_servers,
            topic or settings.topic_touchpoints,
            validator=Validator.from_settings(settings),
            dry_run=dry_run,
            **settings.kafka_command_options(),
        )

    def emit(self, event: Event, *, position: int | None = None) -> Touchpoint | Rejection:
        """Validate one event and, when valid, send it. `position` (e.g. a line number)
        labels the event in the report; by default events are numbered from 1."""
        self._position = position if position is not None else self._position + 1
        verdict: Touchpoint | Rejection
        try:
            raw = _as_bytes(event)
        except (TypeError, ValueError) as error:  # an object JSON cannot hold, a naive Touchpoint
            raw, verdict = b"", _unencodable(event, error)
        else:
            verdict = self.validator.validate(raw)
        if isinstance(verdict, Rejection):
            self.report.refuse(self._position, verdict)
            return verdict
        self.report.accepted += 1
        if self._producer is not None:
            self._send(verdict.key.encode(), raw)
        return verdict

    def _send(self, key: bytes, raw: bytes) -> None:
        assert self._producer is not None
        if self._broken is not None:  # each further attempt would block max_block_ms again
            self._on_failed(self._position, self._broken)
            return
        try:
            future = self._producer.send(self.topic, key=key, value=raw)
        # No metadata for the topic within max_block_ms, or a topic the client will not
        # write to (an internal one): no later send to it can succeed either.
        except (KafkaTimeoutError, ValueError) as error:
            self._broken = error
            self._on_failed(self._position, error)
            return
        except KafkaError as error:  # this message only, e.g. over max_request_size
            self._on_failed(self._position, error)
            return
        future.add_callback(self._on_sent).add_errback(self._on_failed, self._position)

    def flush(self, timeout: float | None = None) -> EmitReport:
        """Wait until every sent event is acknowledged (or failed); return the report."""
        if self._producer is not None:
            self._producer.flush(timeout=timeout)
        return self.report

    def close(self, timeout: float | None = None) -> EmitReport:
        if self._producer is not None:
            self._producer.flush(timeout=timeout)
            self._producer.close(timeout=timeout)
            self._producer = None
        return self.report

    def __enter__(self) -> Emitter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _on_sent(self, _metadata: Any) -> None:
        with self._lock:
            self.report.sent += 1

    def _on_failed(self, position: int, error: Exception) -> None:
        with self._lock:
            self.report.failed += 1
            if len(self.report.first_failures) < self.report.keep:
                self.report.first_failures.append(f"event {position}: {error!r}")


def _unencodable(event: Event, error: Exception) -> Rejection:
    department = event.get("department") if isinstance(event, Mapping) else None
    return Rejection(
        code="not_json",
        field="message",
        message=f"message: cannot be written as JSON ({error}), expected JSON-compatible values",
        department=readable_department(department),
    )


def _as_bytes(event: Event) -> bytes:
    """The bytes to validate and send: as given, or canonical JSON for objects."""
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode("utf-8", "surrogatepass")
    if isinstance(event, Touchpoint):
        return encode_touchpoint(event)
    return msgspec.json.encode(dict(event))
