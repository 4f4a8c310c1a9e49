"""The dead-letter message of an event the collector refused: as the worker writes its own
(`pipeline.stream.runtime.Runtime._dead_letter`), with the collector as its source.

Headers: `reason_code`, `reason`, `field`, `department` (as the worker's), then `source`
(`collector`), `source_request` (the request's id, also in its answer's X-Request-Id),
`source_line` and `source_departments` (what the request's token may emit for: which system
sent it, without the token), then `raw_size`, `raw_sha256` and `raw_truncated` (as the
worker's). The payload is the event's bytes as received, cut to fit the topic's message size
when the headers would make it too large (`raw_truncated: 1`; size and hash name the whole).
"""

from __future__ import annotations

import hashlib

from pipeline.contract import Rejection

Headers = list[tuple[str, bytes]]
SOURCE = "collector"


def dead_letter(
    raw: bytes,
    rejection: Rejection,
    *,
    request_id: str,
    line: int,
    departments: str,
    max_message_bytes: int,
) -> tuple[bytes, Headers]:
    """The payload and headers of one dead letter."""
    headers: Headers = [
        ("reason_code", _utf8(rejection.code)),
        ("reason", _utf8(rejection.message)),
        ("field", _utf8(rejection.field)),
        ("department", _utf8(rejection.department)),
        ("source", SOURCE.encode()),
        ("source_request", request_id.encode()),
        ("source_line", str(line).encode()),
        ("source_departments", _utf8(departments)),
        ("raw_size", str(len(raw)).encode()),
        ("raw_sha256", hashlib.sha256(raw).hexdigest().encode()),
        ("raw_truncated", b"0"),
    ]
    # A record batch of one: its header (61 bytes), the record's own varints, and each
    # header's length prefixes, generously (the worker's allowance).
    overhead = 128 + sum(len(key) + len(value) + 10 for key, value in headers)
    room = max(max_message_bytes - overhead, 0)
    if len(raw) > room:
        raw = raw[:room]
        headers[-1] = ("raw_truncated", b"1")
    return raw, headers


def _utf8(text: str) -> bytes:
    # A reason may quote a lone surrogate from the event; headers must still encode.
    return text.encode("utf-8", "backslashreplace")
