"""A request's body to verdicts and the answer: pure, so every case is unit-tested.

The body is one JSON touchpoint (`application/json`) or JSON Lines
(`application/x-ndjson`), each event checked by the contract's validator (the same one
`journeys emit` and the worker run) and then against the token's departments. Events are
numbered by their line in the body, from 1, blank lines included, as `journeys emit` numbers
them; blank lines are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import msgspec

from pipeline.collect.auth import Grant
from pipeline.contract import Rejection, Validator

Kind = Literal["one", "lines"]
# The media types a body may have; `charset` and other parameters are ignored (the
# validator refuses bytes that are not UTF-8, per event).
MEDIA_TYPES: dict[str, Kind] = {
    "application/json": "one",
    "application/x-ndjson": "lines",
    "application/jsonl": "lines",
    "application/jsonlines": "lines",
}
DEPARTMENT_NOT_ALLOWED = "department_not_allowed"
# Codes the collector adds to the contract's (pipeline.contract.REJECTION_CODES): per event,
# listed in an answer's `rejected` and dead-lettered.
COLLECTOR_REJECTION_CODES = {
    DEPARTMENT_NOT_ALLOWED: "the event's department is not one the request's token may emit for",
}

# Answers about a request as a whole, `{"error": code, "reason": ...}`: code -> (status,
# meaning). Nothing of such a request is accepted or dead-lettered.
REQUEST_ERRORS: dict[str, tuple[int, str]] = {
    "no_events": (400, "the body holds no event (nothing but blank lines)"),
    "unauthorized": (401, "no bearer token, or one the collector does not know"),
    "too_large": (413, "the body is larger than JOURNEYS_COLLECTOR_MAX_BODY_BYTES"),
    "too_many_events": (413, "the body holds more events than JOURNEYS_COLLECTOR_MAX_EVENTS"),
    "unsupported_media_type": (415, "Content-Type is neither application/json nor "
                               "application/x-ndjson"),
    "unsupported_expectation": (417, "an Expect header other than 100-continue"),
    "rate_limited": (429, "the token sent more events than its rate allows; retry after "
                     "Retry-After seconds"),
    "overloaded": (503, "too many events wait for Kafka's acknowledgement; retry after "
                   "Retry-After seconds"),
    "kafka_unavailable": (503, "Kafka did not acknowledge in time: nothing of the request is "
                          "accepted (some events may have reached Kafka; re-sending them is "
                          "safe, an event_id counts once); retry after Retry-After seconds"),
}  # fmt: skip


def media_kind(content_type: str | None) -> Kind | None:
    """How to read a body of this Content-Type; None for one the collector does not take."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


@dataclass(frozen=True)
class Event:
    line: int
    raw: bytes


def split_events(body: bytes, kind: Kind) -> list[Event]:
    """The events of a body, with their line numbers."""
    if kind == "one":
        return [Event(1, body)]
    events = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.endswith(b"\r"):  # CRLF line ends, from a Windows export
            line = line[:-1]
        if line.strip():
            events.append(Event(number, line))
    return events


@dataclass(frozen=True)
class Accepted:
    line: int
    key: bytes  # the contract's message key: journey_id, else customer_id
    raw: bytes  # sent exactly as received
    department: str


@dataclass(frozen=True)
class Refused:
    line: int
    raw: bytes
    rejection: Rejection


@dataclass
class Verdicts:
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def judge(events: list[Event], validator: Validator, grant: Grant) -> Verdicts:
    """Each event accepted (valid, and of a department the token may emit for) or refused
    with its reason."""
    verdicts = Verdicts()
    accepted, refused = verdicts.accepted, verdicts.refused
    for event in events:
        verdict = validator.validate(event.raw)
        if isinstance(verdict, Rejection):
            refused.append(Refused(event.line, event.raw, verdict))
        elif not grant.allows(verdict.department):
            refused.append(Refused(event.line, event.raw, not_allowed(verdict.department, grant)))
        else:
            accepted.append(Accepted(event.line, verdict.key.encode(), event.raw,
                                     verdict.department))  # fmt: skip
    return verdicts


def not_allowed(department: str, grant: Grant) -> Rejection:
    allowed = ", ".join(sorted(grant.departments))
    return Rejection(
        code=DEPARTMENT_NOT_ALLOWED,
        field="department",
        message=f"department: {department!r} is not one this token may emit for, expected "
        f"{'one of ' if len(grant.departments) > 1 else ''}{allowed}",
        department=department,
    )


class _Rejected(msgspec.Struct):
    line: int
    code: str
    field: str
    reason: str


class _Answer(msgspec.Struct):
    accepted: int
    rejected: list[_Rejected]


class _Error(msgspec.Struct):
    error: str
    reason: str


_ENCODER = msgspec.json.Encoder()


def answer(verdicts: Verdicts) -> tuple[int, bytes]:
    """202 with what was accepted and what refused; 400 when every event was refused."""
    refused = [
        _Rejected(r.line, r.rejection.code, r.rejection.field, r.rejection.message)
        for r in verdicts.refused
    ]
    status = 400 if refused and not verdicts.accepted else 202
    return status, _ENCODER.encode(_Answer(len(verdicts.accepted), refused))


def error(code: str, reason: str) -> bytes:
    """The body of an answer about the request as a whole (401, 413, 415, 429, 503)."""
    return _ENCODER.encode(_Error(code, reason))
