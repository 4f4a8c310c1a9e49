"""docs/departments.md stays true: its examples pass, its tables match the package."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from pipeline.contract import EVENT_TYPES, REJECTION_CODES, Rejection, Touchpoint, validate
from tests.support.contract_documents import SCHEMA

DOC = (Path(__file__).parents[2] / "docs/departments.md").read_text(encoding="utf-8")
NOW = datetime(2025, 6, 4, tzinfo=UTC)


def block(language: str) -> list[str]:
    match = re.search(rf"```{language}\n(.*?)```", DOC, re.DOTALL)
    assert match, f"no {language} block in docs/departments.md"
    return match.group(1).splitlines()


def test_one_valid_example_per_event_type() -> None:
    examples = block("jsonl")
    assert [json.loads(line)["type"] for line in examples] == list(EVENT_TYPES)
    for line in examples:
        assert isinstance(validate(line, now=NOW), Touchpoint), line
        assert SCHEMA.is_valid(json.loads(line)), line


def test_rejection_table_lists_every_code_with_its_meaning() -> None:
    rows = dict(re.findall(r"^\| `([a-z_0-9]+)` \| (.+) \|$", DOC, re.MULTILINE))
    assert {code: rows.get(code) for code in REJECTION_CODES} == REJECTION_CODES


def test_example_messages_are_what_the_validator_says() -> None:
    base = '{"event_id":"e","occurred_at":"2025-06-03T09:00:00Z","customer_id":"c",'
    inputs = [
        base.replace('09:00:00Z"', '09:00:00"') + '"department":"sales","type":"contact"}',
        base + '"department":"sales","type":"promise_made",'
        '"attributes":{"promise_id":"p","due_at":"friday"}}',
        base + '"department":"sales","type":"promise_keep"}',
        base + '"department":"sales","type":"contact","journeyid":"j"}',
    ]
    messages = []
    for raw in inputs:
        rejection = validate(raw, now=NOW)
        assert isinstance(rejection, Rejection)
        messages.append(rejection.message)
    assert block("text") == messages
