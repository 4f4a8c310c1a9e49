"""docs/departments.md's context API section stays true: its sample answer is what the
context is for its sample touchpoints, at its time, and its error codes are the API's."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from pipeline.contract import Touchpoint, Validator
from pipeline.journey import JourneyBook, add, load_score_model
from pipeline.journey.context import journey_context
from pipeline.journey.events import to_us

DOC = (Path(__file__).parents[2] / "docs/departments.md").read_text(encoding="utf-8")
SECTION = DOC.split("## Reading a journey: the context API")[1].split("\n## ")[0]
CONTEXT = (Path(__file__).parents[2] / "pipeline/stream/context.py").read_text(encoding="utf-8")


def fenced(info: str) -> str:
    match = re.search(rf"```{info}\n(.*?)```", SECTION, re.DOTALL)
    assert match, f"no ```{info} block in the context API section"
    return match.group(1)


def test_the_sample_answer_is_the_context_of_the_sample_touchpoints() -> None:
    at = re.search(r"a request on (\d{4}-\d\d-\d\d) at (\d\d:\d\d) UTC answers", SECTION)
    assert at, "the section says when the sample request was made"
    now = datetime.fromisoformat(f"{at[1]}T{at[2]}:00+00:00")
    validator, model = Validator(max_bytes=1 << 20), load_score_model()
    book = None
    for line in fenced("jsonl context-api-events").splitlines():
        touchpoint = validator.validate(line.encode(), now=now)
        assert isinstance(touchpoint, Touchpoint), touchpoint
        book = book or JourneyBook.for_touchpoint(touchpoint)
        add(book, touchpoint, model)
    assert book is not None
    answer = json.loads(fenced("json context-api-answer"))
    assert answer == journey_context(book, answer["journey_id"], model, to_us(now))


def test_every_error_code_the_api_answers_is_documented() -> None:
    codes = set(re.findall(r'(?:refusal\(\s*\d{3},\s*|\(\d{3}, )"([a-z_]+)"', CONTEXT))
    codes |= set(re.findall(r'refusal\(\d{3}, "([a-z_]+)"', CONTEXT))
    assert codes >= {"unauthorized", "forbidden", "unknown_journey", "not_ready"}
    web = (Path(__file__).parents[2] / "pipeline/stream/web.py").read_text(encoding="utf-8")
    codes |= set(re.findall(r'refusal\(\d{3}, "([a-z_]+)"', web))
    missing = {code for code in codes if f"`{code}`" not in SECTION}
    assert not missing, f"undocumented error codes: {missing}"
