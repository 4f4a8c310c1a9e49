"""Bytes in, a `Touchpoint` or a `Rejection` out: the check every message gets.

Two paths with one verdict. The fast path decodes straight into a typed struct with
msgspec (lengths, vocabulary, unknown fields and the bounds of attributes are checked in
C; it never recurses) and then applies the few rules msgspec cannot express. Anything it
does not accept goes to the reference path, which walks the document field by field in
contract order and names the first problem precisely. Only bad events, and the rare valid
ones with arrays or objects in attributes, pay for the reference path; the property tests
check both paths against the JSON Schema.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from pipeline.contract import bounds, rules
from pipeline.contract.diagnose import diagnose
from pipeline.contract.touchpoint import CHANNELS, EVENT_TYPES, Rejection, Touchpoint

if TYPE_CHECKING:
    from pipeline.settings import Settings

# What a Kafka message value can be: bytes-like, text for convenience, None for a tombstone.
Message = bytes | bytearray | memoryview | str | None
DEFAULT_MAX_BYTES = 65_536
DEFAULT_FUTURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_EARLIEST = bounds.EARLIEST

_Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=rules.MAX_IDENTIFIER)]
_EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
_Channel = Literal[CHANNELS]  # type: ignore[valid-type]


class _Wire(msgspec.Struct, forbid_unknown_fields=True):
    """The contract as msgspec can check it while decoding; the rest is checked after."""

    event_id: _Identifier
    occurred_at: str
    customer_id: _Identifier
    department: str
    type: _EventType
    journey_id: _Identifier | None = None
    stage: str | None = None
    channel: _Channel | None = None
    attributes: bounds.ATTRIBUTES = {}
    schema_version: int = 1


_DECODER = msgspec.json.Decoder(_Wire)
_SLUGS = rules.KNOWN_SLUGS
_HORIZON_REFRESH_S = 0.1
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


class Validator:
    """The contract's validator with its settings: size limit, clock-skew tolerance and the
    earliest event time accepted."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
        earliest: datetime = DEFAULT_EARLIEST,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes: got {max_bytes}, expected a positive number of bytes")
        if future_tolerance < timedelta(0):
            raise ValueError(f"future_tolerance: got {future_tolerance}, expected >= 0")
        if earliest.tzinfo is None:
            raise ValueError(f"earliest: got naive {earliest.isoformat()}, expected aware")
        self.max_bytes = max_bytes
        self.future_tolerance = future_tolerance
        # In UTC, as parsed timestamps are: comparing across tzinfo objects costs more.
        self.earliest = earliest.astimezone(UTC)
        self._horizon_until = 0.0  # wall-clock seconds until which _horizon holds
        self._horizon = datetime.min.replace(tzinfo=UTC)

    @classmethod
    def from_settings(cls, settings: Settings) -> Validator:
        """The validator with the operator's JOURNEYS_CONTRACT_* limits."""
        return cls(
            max_bytes=settings.contract_max_bytes,
            future_tolerance=timedelta(seconds=settings.contract_future_tolerance_seconds),
            earliest=settings.contract_earliest_occurred_at,
        )

    def validate(self, raw: Message, now: datetime | None = None) -> Touchpoint | Rejection:
        """Check one message. `now` pins the clock for the future-timestamp rule (tests,
        replay); None means the wall clock."""
        if type(raw) is bytes:
            data = raw
        elif raw is None:
            return TOMBSTONE
        else:
            data = _as_bytes(raw)
        if len(data) > self.max_bytes:
            return self._too_large(data)
        try:
            wire = _DECODER.decode(data)
        except _DECODE_ERRORS:
            return self._diagnosed(data, now)
        touchpoint = self._accept(wire, now)
        return touchpoint if touchpoint is not None else self._diagnosed(data, now)

    def _accept(self, wire: _Wire, now: datetime | None) -> Touchpoint | None:
        occurred = rules.parse_timestamp(wire.occurred_at)
        if occurred is None or occurred < self.earliest or self._in_future(occurred, now):
            return None
        # A set lookup first: departments and stages repeat, so is_slug is rarely called.
        if wire.department not in _SLUGS and not rules.is_slug(wire.department):
            return None
        stage = wire.stage
        if stage is not None and stage not in _SLUGS and not rules.is_slug(stage):
            return None
        if wire.schema_version != 1:
            return None
        if rules.attribute_problem(wire.type, wire.attributes) is not None:
            return None
        return Touchpoint(
            event_id=wire.event_id,
            occurred_at=occurred,
            customer_id=wire.customer_id,
            department=wire.department,
            type=wire.type,
            journey_id=wire.journey_id,
            stage=wire.stage,
            channel=wire.channel,
            attributes=wire.attributes,
            schema_version=1,
        )

    def _in_future(self, occurred: datetime, now: datetime | None) -> bool:
        if now is not None:
            return occurred > now + self.future_tolerance
        # The wall-clock horizon is refreshed every 100 ms rather than built per event
        # (datetime.now costs more than the rest of the check); it is computed for the end
        # of that window, so it errs by at most 100 ms on the lenient side.
        wall = time.time()
        until = self._horizon_until
        if not until - _HORIZON_REFRESH_S <= wall < until:  # expired, or the clock stepped back
            self._horizon_until = wall + _HORIZON_REFRESH_S
            self._horizon = datetime.fromtimestamp(self._horizon_until, UTC) + self.future_tolerance
        return occurred > self._horizon

    def horizon(self, now: datetime | None) -> datetime:
        """The latest acceptable occurred_at for the clock `now` (None: wall clock)."""
        # time.time(), as on the fast path: both paths must read the same clock.
        wall = now if now is not None else datetime.fromtimestamp(time.time(), UTC)
        return wall + self.future_tolerance

    def _diagnosed(self, raw: bytes, now: datetime | None) -> Touchpoint | Rejection:
        return diagnose(raw, self.horizon(now), self.earliest)

    def _too_large(self, raw: bytes) -> Rejection:
        message = f"message: {len(raw)} bytes, expected at most {self.max_bytes} bytes"
        department = _department_of(raw)
        return Rejection(code="too_large", field="message", message=message, department=department)


# A record with no value at all (a null value: Kafka's tombstone, which a compacted topic
# reads as "delete this key") is not an empty message: its producer meant something else.
TOMBSTONE = Rejection(
    code="tombstone",
    field="message",
    message="message: no value (a Kafka tombstone, value null), expected one JSON object",
)


def _as_bytes(raw: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    return bytes(raw)


class _DepartmentOnly(msgspec.Struct):
    department: str = ""


_DEPARTMENT_DECODER = msgspec.json.Decoder(_DepartmentOnly)


def _department_of(raw: bytes) -> str:
    """The department of an oversized message, when it can be read (for per-department
    counts of rejections)."""
    if bounds.nesting_depth(raw) > bounds.MAX_DEPTH:  # skipping it would recurse as deep
        return ""
    try:
        department = _DEPARTMENT_DECODER.decode(raw).department
    except _DECODE_ERRORS:
        return ""
    return rules.readable_department(department)


_DEFAULT = Validator()


def validate(raw: Message, *, now: datetime | None = None) -> Touchpoint | Rejection:
    """Check one message against the contract with the default limits."""
    return _DEFAULT.validate(raw, now)
