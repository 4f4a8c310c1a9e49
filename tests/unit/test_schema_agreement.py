"""The published JSON Schema and the package's validator give the same verdict.

Departments validate against the schema; the worker validates with `pipeline.contract`. If
they disagreed, a department could pass its own checks and still see its events rejected
(or the reverse). Hypothesis generates valid documents and mutates them into (mostly)
invalid ones; both sides must agree on every one, and so must the validator's reference
path, which names the reasons.

The valid documents come from tests/support/contract_documents.py, which says what they leave
out on purpose. The bounds of 1-0-1 (nesting depth, 64-bit numbers, string, key and array
sizes, years from 1900) are generated at and just past each limit.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.contract import Touchpoint, bounds
from pipeline.contract.diagnose import diagnose
from pipeline.contract.rules import ATTRIBUTE_RULES, CONTRACT_FIELDS, REQUIRED_FIELDS
from tests.support.contract_documents import (
    JSON_VALUES,
    NUMBERS,
    PINNED_NOW,
    SCHEMA,
    SLUGS,
    TEXT,
    VALIDATOR,
    timestamps,
    valid_documents,
)

EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _nested(depth: int, leaf: Any) -> Any:
    """`leaf` inside `depth` arrays and objects, alternating."""
    for level in range(depth):
        leaf = [leaf] if level % 2 else {"k": leaf}
    return leaf


# Values at and just past each bound of 1-0-1, for an attribute (the attributes object is
# level 2 of nesting, so a value nested 30 levels deep reaches the limit of 32).
AT_THE_BOUNDS = st.one_of(
    st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30, 9.2e18, 9.3e18, 1e19,
                     float(2**63), float(-(2**63)), 1e308, -1e308]),
    st.builds(_nested, st.integers(bounds.MAX_DEPTH - 4, bounds.MAX_DEPTH + 2), NUMBERS),
    st.sampled_from([bounds.MAX_STRING, bounds.MAX_STRING + 1]).map(lambda n: "x" * n),
    st.sampled_from([bounds.MAX_KEY, bounds.MAX_KEY + 1]).map(lambda n: {"k" * n: 1}),
    st.sampled_from([bounds.MAX_ITEMS, bounds.MAX_ITEMS + 1]).map(lambda n: [0] * n),
    st.sampled_from([bounds.MAX_ITEMS, bounds.MAX_ITEMS + 1]).map(
        lambda n: {str(i): 0 for i in range(n)}
    ),
    st.builds(lambda v: [1, {"x": v}], st.sampled_from([2**63, "x" * (bounds.MAX_STRING + 1)])),
)  # fmt: skip


BAD_TIMESTAMPS = st.sampled_from(
    ["2024-05-01T09:30:00", "2024-05-01 09:30:00Z", "2024-05-01T09:30Z", "2024-05-01",
     "2024-05-01T09:30:00+0200", "2024-05-01T09:30:00.Z", "2024-13-01T09:30:00Z",
     "2024-05-01T24:00:00Z", "2024-05-01T09:30:60Z", "2024-05-01T09:30:00+24:00",
     "2024-05-01T09:30:00 +02:00", "2024-05-01T09:30:00+02", "1714555800", "tomorrow"]
)  # fmt: skip
BAD_SLUGS = st.sampled_from(["", "Sales", "9lives", "_x", "a-b", "a b", "é", "a" * 65]) | TEXT


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with one thing changed; most are invalid, a few stay valid."""
    document = draw(valid_documents())
    event_type = document["type"]
    mutation = draw(st.integers(0, 13))
    if mutation == 0:
        del document[draw(st.sampled_from(REQUIRED_FIELDS))]
    elif mutation == 1:
        document[draw(st.sampled_from(CONTRACT_FIELDS))] = draw(JSON_VALUES)
    elif mutation == 2:
        name = draw(st.sampled_from(["event_id", "customer_id", "journey_id"]))
        document[name] = draw(st.sampled_from(["", "x" * 129, "é" * 200]))
    elif mutation == 3:
        document[draw(st.sampled_from(["department", "stage"]))] = draw(BAD_SLUGS)
    elif mutation == 4:
        document["type"] = draw(TEXT | st.sampled_from(["Contact", "promise", "survey"]))
    elif mutation == 5:
        document["occurred_at"] = draw(BAD_TIMESTAMPS | TEXT)
    elif mutation == 6:
        document["channel"] = draw(TEXT | st.sampled_from(["Phone", "sms", ""]))
    elif mutation == 7:
        document[draw(TEXT.filter(lambda k: k not in CONTRACT_FIELDS))] = draw(JSON_VALUES)
    elif mutation == 8:
        document["schema_version"] = draw(st.integers(-3, 3) | st.sampled_from([2.0, 1.5, "1"]))
    elif mutation == 9:
        document["occurred_at"] = draw(timestamps(st.integers(1, 1699)))  # before 1900
    elif mutation == 10:
        names = {rule.name for rule in ATTRIBUTE_RULES[event_type]}
        key = draw(TEXT.filter(lambda k: k not in names))
        document.setdefault("attributes", {})[key] = draw(AT_THE_BOUNDS)
    else:
        _mutate_attributes(draw, document, event_type)
    return document


def _mutate_attributes(draw: st.DrawFn, document: dict[str, Any], event_type: str) -> None:
    attributes = document.setdefault("attributes", {})
    if not isinstance(attributes, dict):
        return
    names = [rule.name for rule in ATTRIBUTE_RULES[event_type]]
    if not names:
        document["attributes"] = draw(JSON_VALUES)
        return
    name = draw(st.sampled_from(names))
    if draw(st.booleans()):
        attributes.pop(name, None)
        if event_type == "survey_response" and draw(st.booleans()):
            attributes.clear()
    else:
        attributes[name] = draw(JSON_VALUES | BAD_TIMESTAMPS | BAD_SLUGS)


def _verdicts(document: dict[str, Any], ascii_only: bool) -> tuple[bool, bool, bool]:
    raw = json.dumps(document, ensure_ascii=ascii_only).encode()
    by_schema = SCHEMA.is_valid(document)
    by_validator = isinstance(VALIDATOR.validate(raw, now=PINNED_NOW), Touchpoint)
    by_reference = isinstance(diagnose(raw, VALIDATOR.horizon(PINNED_NOW)), Touchpoint)
    return by_schema, by_validator, by_reference


@EXAMPLES
@given(valid_documents(), st.booleans())
def test_valid_documents_pass_schema_and_validator(
    document: dict[str, Any], ascii_only: bool
) -> None:
    assert _verdicts(document, ascii_only) == (True, True, True), document


@EXAMPLES
@given(mutated_documents(), st.booleans())
def test_schema_and_validator_agree_on_mutated_documents(
    document: dict[str, Any], ascii_only: bool
) -> None:
    by_schema, by_validator, by_reference = _verdicts(document, ascii_only)
    event("valid" if by_schema else "invalid")
    assert by_schema == by_validator == by_reference, (document, by_schema, by_validator)


ANY_FIELDS = st.sampled_from(CONTRACT_FIELDS) | TEXT


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ANY_FIELDS, JSON_VALUES | timestamps() | SLUGS, max_size=8))
def test_schema_and_validator_agree_on_arbitrary_objects(document: dict[str, Any]) -> None:
    by_schema, by_validator, by_reference = _verdicts(document, ascii_only=False)
    assert by_schema == by_validator == by_reference, document
