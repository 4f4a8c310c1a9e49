"""docs/departments.md's collector section stays true: its answers are what the collector
answers to its examples, its table has every request error with its status, and every
answer it shows fits the committed OpenAPI description."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline.collect import Collector, Limits
from pipeline.collect.auth import parse_tokens
from pipeline.collect.batch import COLLECTOR_REJECTION_CODES, REQUEST_ERRORS
from pipeline.collect.limits import RateLimiter
from pipeline.contract import Validator
from tests.support.collector_http import CollectorThread, MemoryPublisher

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "departments.md").read_text(encoding="utf-8")
SECTION = DOC.split("### Over HTTP: the collector")[1].split("\n## ")[0]
OPENAPI = json.loads((REPO / "docs" / "collector.openapi.json").read_text())


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SECTION, re.DOTALL)


def schema(name: str) -> dict[str, Any]:
    """A component schema that resolves its references within the description."""
    return {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}


@pytest.fixture(scope="module")
def server() -> Iterator[CollectorThread]:
    collector = Collector(
        tokens=parse_tokens('{"s3cr3t-billing": ["billing"]}', "tokens"),
        validator=Validator(), limiter=RateLimiter(1e9, 1e9), publisher=MemoryPublisher(),
        limits=Limits(max_body_bytes=5 << 20, max_events=10_000, max_pending_events=10**6,
                      max_message_bytes=1 << 20),
    )  # fmt: skip
    with CollectorThread(collector) as running:
        yield running


def test_the_documented_answers_are_the_collectors(server: CollectorThread) -> None:
    files = dict(re.findall(r"cat > (\S+) <<'END'\n(.*?)\nEND", SECTION, re.DOTALL))
    sent = [
        (files["event.json"].encode(), "application/json"),
        (files["batch.jsonl"].encode() + b"\n", "application/x-ndjson"),
        (b'{"event_id": "x"}\n', "application/x-ndjson"),
    ]
    shown = [json.loads(answer) for answer in blocks("json")]
    assert len(shown) == len(sent)
    for (body, content_type), expected in zip(sent, shown, strict=True):
        status, _, answer = server.post(body, token="s3cr3t-billing", content_type=content_type)
        assert answer == expected
        assert status == (400 if expected["accepted"] == 0 else 202)
        jsonschema.validate(answer, schema("Answer"))


def test_the_table_has_every_request_error_with_its_status() -> None:
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", SECTION, re.MULTILINE)
    assert {code: int(status) for status, code in rows} == {
        code: status for code, (status, _) in REQUEST_ERRORS.items()
    }
    for code in COLLECTOR_REJECTION_CODES:
        assert f"`{code}`" in SECTION


def test_every_error_answer_shown_fits_the_description() -> None:
    answers = blocks("http")
    assert answers
    for answer in answers:
        status = int(answer.split()[1])
        body = json.loads(answer.strip().splitlines()[-1])
        jsonschema.validate(body, schema("Error"))
        assert REQUEST_ERRORS[body["error"]][0] == status
        if status in (429, 503):
            assert "\nRetry-After: " in answer
