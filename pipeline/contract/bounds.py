"""How deep, how big and how far out an accepted event may be.

Everything after the validator recurses per level of nesting or assumes 64-bit numbers:
msgspec decoding raises RecursionError near 1,000 levels, orjson refuses to encode more
than 254 levels or integers beyond 64 bits, ClickHouse stores 64-bit numbers. So these
bounds hold before anything recursive runs. The fast path decodes attributes as bounded
scalars (`ATTRIBUTES`, checked by msgspec in C), so it never recurses; the reference path
counts a message's brackets in C (`nesting_depth`) before decoding it, then checks the
values (`attribute_bounds`). The JSON Schema (1-0-1) states the same numbers.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from datetime import UTC, datetime
from itertools import accumulate
from typing import Annotated, Any, NamedTuple, Union

import msgspec

MAX_DEPTH = 32  # levels of arrays and objects; the message is level 1, attributes level 2
MAX_STRING = 16_384  # characters of a string value in attributes
MAX_KEY = 128  # characters of a key in attributes
MAX_ITEMS = 1_024  # items of an array, members of an object, in attributes
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# Floats share the integers' range: JSON Schema's "integer" includes 1e19 (a float), so a
# different range per type would let the schema and the validator disagree. The largest
# double not above INT_MAX is 2**63 - 1024; msgspec compares floats to float bounds.
FLOAT_MAX = float(2**63 - 1024)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)  # default earliest occurred_at


_Key = Annotated[str, msgspec.Meta(max_length=MAX_KEY)]
_ITEMS = msgspec.Meta(max_length=MAX_ITEMS)
# `attributes` as the fast path decodes it: scalar values only, every bound checked by
# msgspec in C, and nothing to recurse into. An array or object in attributes (rare: the
# contract's attributes are all scalars) sends the message to the reference path, which
# scans its depth before decoding and then walks it with `attribute_bounds`. Typing the
# nested levels instead would take a type per level, and msgspec expands such a type
# tree (two children a level) in 2**30 steps.
ATTRIBUTES: Any = Annotated[
    dict[
        _Key,
        Union[  # noqa: UP007 (Annotated members read more easily in a Union[...] list)
            bool,
            Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)],
            Annotated[float, msgspec.Meta(ge=float(INT_MIN), le=FLOAT_MAX)],
            Annotated[str, msgspec.Meta(max_length=MAX_STRING)],
            None,
        ],
    ],
    _ITEMS,
]


class OutOfBounds(NamedTuple):
    code: str  # too_deep | number_out_of_range | string_too_long | too_many_items
    path: str  # where, e.g. attributes.readings[3]
    what: str  # the offending value, described
    expected: str


_NUMBER = f"a number from {INT_MIN} to {INT_MAX} (signed 64-bit)"


def attribute_bounds(attributes: dict[str, Any]) -> OutOfBounds | None:
    """The first value of decoded `attributes` out of bounds, in document order, or None."""
    return _within(attributes, "attributes")


def _within(value: Any, path: str) -> OutOfBounds | None:
    # Recursion is safe: only documents at most MAX_DEPTH levels deep are decoded.
    kind = type(value)
    if kind is str:
        if len(value) > MAX_STRING:
            what = f"string of {len(value)} characters"
            return OutOfBounds("string_too_long", path, what, f"at most {MAX_STRING} characters")
    elif kind is int or kind is float:
        if not INT_MIN <= value <= INT_MAX:  # also refuses inf and nan
            return OutOfBounds("number_out_of_range", path, f"number {value!r}", _NUMBER)
    elif kind is list:
        if len(value) > MAX_ITEMS:
            what = f"array of {len(value)} items"
            return OutOfBounds("too_many_items", path, what, f"at most {MAX_ITEMS} items")
        for index, item in enumerate(value):
            if (problem := _within(item, f"{path}[{index}]")) is not None:
                return problem
    elif kind is dict:
        if len(value) > MAX_ITEMS:
            what = f"object of {len(value)} members"
            return OutOfBounds("too_many_items", path, what, f"at most {MAX_ITEMS} members")
        for key, item in value.items():
            if len(key) > MAX_KEY:
                what = f"key of {len(key)} characters ({key[:24]!r}…)"
                return OutOfBounds(
                    "string_too_long", path, what, f"keys of at most {MAX_KEY} characters"
                )
            if (problem := _within(item, f"{path}.{key}")) is not None:
                return problem
    return None


# --- the raw bytes, for messages that cannot be decoded --------------------------------

# A string, or an unterminated one up to the end: matching never fails part-way, so a run
# of escaped quotes cannot make the scan quadratic.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.DOTALL)
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in `raw`, without decoding it (an upper bound when
    `raw` is not JSON). A few hundred microseconds for a megabyte of brackets."""
    opened = raw.count(b"[") + raw.count(b"{")
    if opened <= MAX_DEPTH:  # nearly every message: the count bounds the depth
        return opened
    steps = _STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps)), default=0)


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)|[\[\]{}:,]|-?[0-9][0-9.eE+-]*', re.DOTALL)


def locate(raw: bytes) -> OutOfBounds | None:
    """Where undecodable `raw` nests deeper than MAX_DEPTH or writes a number no double
    holds (1e400), as a path: for the reason of a message msgspec refused to decode."""
    path: list[str | int] = []  # per open array or object: its key or index
    pending_key: str | None = None
    for match in _TOKEN.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            if len(path) >= MAX_DEPTH:
                # Named down to the attribute (or top-level field) it is in: the full path
                # is 32 levels long.
                where = "message" if isinstance(path[0], int) else _path(path[:2])
                what = f"arrays and objects nested deeper than {MAX_DEPTH} levels"
                return OutOfBounds("too_deep", where, what, f"at most {MAX_DEPTH} levels")
            path.append(0 if token == b"[" else "")
        elif token in (b"]", b"}"):
            if path:
                path.pop()
        elif token == b",":
            if path and isinstance(path[-1], int):
                path[-1] += 1
        elif token == b":":
            if path and pending_key is not None:
                path[-1] = pending_key
        elif token.startswith(b'"'):
            pending_key = token[1:-1].decode("utf-8", "replace")
        elif _overflows(token):
            what = f"number {token[:24].decode()}"
            return OutOfBounds("number_out_of_range", _path(path) or "message", what, _NUMBER)
    return None


def top_level_string(raw: bytes, name: str) -> str:
    """The string a top-level key `name` holds in undecodable `raw` ("" if none): the
    department of a message too deep to decode, so its rejection is counted as theirs."""
    key = b'"' + name.encode() + b'"'
    depth, last, wanted = 0, b"", False
    for match in _TOKEN.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
        elif wanted and token.startswith(b'"'):
            try:
                value = json.loads(token)
            except ValueError:
                return ""
            return value if isinstance(value, str) else ""
        wanted = depth == 1 and token == b":" and last == key
        last = token
    return ""


def _overflows(number: bytes) -> bool:
    try:
        return math.isinf(float(number))
    except ValueError:  # not a number after all: the decoder's own error stands
        return False


def _path(parts: list[str | int]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
    return text.lstrip(".")
