"""The validator bounds an event before anything recursive or 64-bit runs on it.

Before these bounds, 1,000 levels of `[` raised RecursionError inside the validator (the
message was neither accepted nor rejected), 300 levels or an integer beyond 64 bits passed
and then crashed row building. Each bound is checked here at its limit and just past it,
directly in attributes and nested deeper, by both paths of the validator and by the JSON
Schema, which must all give the same verdict.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.contract import REJECTION_CODES, Rejection, Touchpoint, Validator, bounds, validate
from pipeline.contract.diagnose import diagnose
from tests.support.contract_documents import SCHEMA

NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
HUGE = Validator(max_bytes=10**8)  # so that size alone never decides


def event(attributes: Any, **fields: Any) -> bytes:
    document = {
        "event_id": "e1",
        "occurred_at": "2026-03-10T09:00:00Z",
        "customer_id": "c1",
        "department": "billing",
        "type": "contact",
        "attributes": attributes,
    } | fields
    return json.dumps(document).encode()  # fmt: skip


def deep(levels: int) -> Any:
    value: Any = 0
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


# (name, attribute value, accepted): the attributes object is level 2 of the message.
AT_AND_PAST: list[tuple[str, Any, bool]] = [
    ("int max", bounds.INT_MAX, True),
    ("int min", bounds.INT_MIN, True),
    ("int max + 1", bounds.INT_MAX + 1, False),
    ("int min - 1", bounds.INT_MIN - 1, False),
    ("float below 2**63", float(2**63 - 1024), True),
    ("float 2**63", float(2**63), False),
    ("float -2**63", float(-(2**63)), True),
    ("float 1e300", 1e300, False),
    ("string at limit", "é" * bounds.MAX_STRING, True),
    ("string past limit", "é" * (bounds.MAX_STRING + 1), False),
    ("key at limit", {"k" * bounds.MAX_KEY: 1}, True),
    ("key past limit", {"k" * (bounds.MAX_KEY + 1): 1}, False),
    ("array at limit", [0] * bounds.MAX_ITEMS, True),
    ("array past limit", [0] * (bounds.MAX_ITEMS + 1), False),
    ("object past limit", {str(n): 0 for n in range(bounds.MAX_ITEMS + 1)}, False),
    ("depth at limit", deep(bounds.MAX_DEPTH - 2), True),
    ("depth past limit", deep(bounds.MAX_DEPTH - 1), False),
    ("brackets in a string", "[{" * 40, True),
]


@pytest.mark.parametrize(("value", "accepted"), [c[1:] for c in AT_AND_PAST],
                         ids=[c[0] for c in AT_AND_PAST])  # fmt: skip
@pytest.mark.parametrize("where", ["direct", "nested"])
def test_both_paths_and_the_schema_agree_at_each_bound(
    value: Any, accepted: bool, where: str
) -> None:
    if where == "nested":  # two levels down: checked by the walk, not by msgspec's types
        value = [1, {"x": value}]
        accepted = accepted and not (isinstance(value, list) and _too_deep_nested(value))
    raw = event({"note": value})
    fast = HUGE.validate(raw, now=NOW)
    reference = diagnose(raw, HUGE.horizon(NOW))
    assert (isinstance(fast, Touchpoint), isinstance(reference, Touchpoint)) == (
        accepted,
        accepted,
    ), (fast, reference)
    assert SCHEMA.is_valid(json.loads(raw)) is accepted
    if not accepted:
        assert isinstance(fast, Rejection) and fast == reference


def _too_deep_nested(value: Any) -> bool:
    depth, stack = 0, [(value, 3)]  # the attribute "note" holds a level-3 container
    while stack:
        item, level = stack.pop()
        if isinstance(item, list | dict):
            depth = max(depth, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return depth > bounds.MAX_DEPTH


@pytest.mark.timeout(30)
@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
@pytest.mark.parametrize("where", ["message", "attributes"])
def test_a_hundred_thousand_levels_are_refused_quickly_not_recursed(
    opening: bytes, where: str
) -> None:
    closing = b"]" if opening == b"[" else b"}"
    nest = opening * 100_000 + b"0" + closing * 100_000
    raw = nest if where == "message" else event({"x": 0}).replace(b'{"x": 0}', nest)
    for validator in (HUGE, Validator()):  # too_large reads the department first
        started = time.perf_counter()
        rejection = validator.validate(raw, now=NOW)
        assert isinstance(rejection, Rejection)
        assert rejection.code in ("too_deep", "too_large"), rejection
        assert time.perf_counter() - started < 2.0
    assert HUGE.validate(raw, now=NOW).code == "too_deep"  # type: ignore[union-attr]


def test_nesting_depth_ignores_brackets_in_strings_and_survives_bad_escapes() -> None:
    assert bounds.nesting_depth(b'{"a": "' + b"[" * 100 + b'"}') == 1
    assert bounds.nesting_depth(b"[" * 40 + b"]" * 40) == 40
    assert bounds.nesting_depth(b'["' + b'\\"' * 50_000 + b"[[[") >= 1  # unterminated


def test_an_early_event_is_refused_by_both_paths_and_the_schema() -> None:
    raw = event({}, occurred_at="1899-06-01T00:00:00Z")
    fast = validate(raw, now=NOW)
    assert isinstance(fast, Rejection) and fast.code == "early_timestamp"
    assert diagnose(raw, NOW) == fast
    assert not SCHEMA.is_valid(json.loads(raw))


@pytest.mark.parametrize(
    ("raw", "department"),
    [
        (b'{"department": "billing", "attributes": {"x": ' + b"[" * 40 + b"]" * 40 + b"}}",
         "billing"),
        (b'{"attributes": {"x": ' + b"[" * 40 + b"]" * 40 + b'}, "department": "sales"}', "sales"),
        (b'{"attributes": {"department": "x", "y": ' + b"[" * 40 + b"]" * 40 + b"}}", ""),
        (b'{"department": "billing", "attributes": {"amount": 1e400}}', "billing"),
    ],
)  # fmt: skip
def test_an_undecodable_event_is_still_counted_for_its_department(
    raw: bytes, department: str
) -> None:
    rejection = validate(raw, now=NOW)
    assert isinstance(rejection, Rejection)
    assert rejection.code in ("too_deep", "number_out_of_range")
    assert rejection.department == department


HOSTILE = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda d, o: (o * d).encode(), st.integers(0, 3000), st.sampled_from(["[", '{"a":'])),
    st.builds(
        lambda prefix, d, leaf: prefix + b"[" * d + leaf + b"]" * d + b"}}",
        st.just(b'{"event_id":"e","occurred_at":"2026-03-01T00:00:00Z","customer_id":"c",'
                b'"department":"sales","type":"contact","attributes":{"x":'),
        st.integers(0, 2000),
        st.sampled_from([b"0", b"1e400", b"-1e999", b"123456789012345678901234567890", b'"\\ud800"',
                         b'"\\u0000"', b"[", b"]", b'"']),
    ),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_any_bytes_get_a_verdict_quickly_and_never_an_exception(raw: bytes) -> None:
    started = time.perf_counter()
    verdict = HUGE.validate(raw, now=NOW)
    assert time.perf_counter() - started < 1.0
    assert isinstance(verdict, Touchpoint | Rejection)
    if isinstance(verdict, Rejection):
        assert verdict.code in REJECTION_CODES
        assert verdict.message.startswith(f"{verdict.field}: ") and "\n" not in verdict.message
