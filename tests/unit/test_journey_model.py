"""The score model file: its v1 defaults, validation errors, and re-scoring with v2."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pipeline.journey import (
    DEFAULT_MODEL_PATH,
    ScoreModelError,
    load_score_model,
    parse_score_model,
)
from tests.support.touchpoints import MODEL, TouchpointFactory, at, play

DAY_US = 86_400_000_000


def raw_v1() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_MODEL_PATH.read_text())


def test_v1_holds_every_default_of_the_product() -> None:
    assert MODEL.version == "v1"
    assert MODEL.front_desk == {"sales", "customer_service"}
    assert dict(MODEL.impacts) == {
        "repeat_contact": -8, "context_lost": -6, "promise_broken": -15,
        "promise_kept_late": -5, "promise_kept": 2, "feedback_unanswered": -10, "rework": -10,
        "slow_resolution": -5, "first_contact_resolution": 3, "proactive_update": 4,
        "fast_fix": 3,
    }  # fmt: skip
    assert (MODEL.long_wait_step, MODEL.long_wait_max) == (-2, -8)
    assert MODEL.inactivity_gap_us == 14 * DAY_US
    assert MODEL.repeat_contact_us == 7 * DAY_US and MODEL.feedback_answer_us == 5 * DAY_US
    assert MODEL.fast_fix_us == DAY_US
    assert (MODEL.good_at_least, MODEL.poor_below, MODEL.survey_weight) == (75, 50, 0.5)
    assert MODEL.wait_threshold("phone") == 120 and MODEL.wait_threshold("unknown") == 300
    assert MODEL.resolution_target("billing") == 5 * DAY_US
    assert MODEL.resolution_target("legal") == 3 * DAY_US
    assert MODEL.max_events_per_journey == 1000


def test_stage_defaults_per_event_type(touchpoint_factory: TouchpointFactory) -> None:
    assert MODEL.stage_for(touchpoint_factory("invoice_issued")) == "billing"
    assert MODEL.stage_for(touchpoint_factory("order_placed")) == "purchase"
    assert MODEL.stage_for(touchpoint_factory("order_delivered")) == "delivery"
    assert MODEL.stage_for(touchpoint_factory("contact", stage="renewal")) == "renewal"


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        doc = doc[name]
    if value is _DELETE:
        del doc[leaf]
    else:
        doc[leaf] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("version", "", "key 'version' = '': expected a non-empty string"),
        ("version", _DELETE, "key 'version' = None: expected"),
        ("impacts.rework", 10, "key 'impacts.rework' = 10.0: expected a number 0 or below"),
        ("impacts.fast_fix", -3, "key 'impacts.fast_fix' = -3.0: expected a number 0 or above"),
        ("impacts.rework", "-15", "key 'impacts.rework' = '-15': expected a number"),
        ("impacts.reworks", -10, "key 'impacts.reworks' is unknown: expected one of"),
        ("impacts.rework", _DELETE, "key 'impacts.rework' = None: expected a number"),
        ("bands.poor_below", 80, "poor_below=80.0: expected 0 <= poor_below <= good_at_least"),
        ("journey.survey_weight", 1.5, "survey_weight' = 1.5: expected a number from 0 to 1"),
        ("journey.inactivity_gap_days", 0, "gap_days' = 0.0: expected a number above 0"),
        ("front_desk", ["Sales Team"], "['Sales Team']: expected a list of department slugs"),
        ("long_wait.threshold_seconds.fax", 10, "threshold_seconds.fax' is unknown"),
        ("long_wait.threshold_seconds.phone", -1, "phone' = -1.0: expected a number above 0"),
        ("resolution_target_hours.default", _DELETE, "target_hours.default' is missing"),
        ("stages.contact", "Service!", "key 'stages.contact' = 'Service!': expected a stage slug"),
        ("stages.telepathy", "service", "key 'stages.telepathy' is unknown"),
        ("state.max_events_per_journey", 1.5, "per_journey' = 1.5: expected a whole number"),
        ("state.retention_days", 7, "= 7.0: expected at least journey.inactivity_gap_days"),
        ("windows.fast_fix_minutes", 10, "key 'windows.fast_fix_minutes' is unknown"),
        ("bands", 3, "key 'bands' = 3: expected a table"),
        ("colour", "red", "key 'colour' is unknown"),
    ],
)  # fmt: skip
def test_invalid_models_name_the_key_the_value_and_the_expectation(
    key: str, value: Any, message: str
) -> None:
    doc = copy.deepcopy(raw_v1())
    _set(doc, key, value)
    with pytest.raises(ScoreModelError) as caught:
        parse_score_model(doc)
    assert message in str(caught.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScoreModelError, match=r"missing\.toml: cannot read it"):
        load_score_model(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("version = \n")
    with pytest.raises(ScoreModelError, match=r"broken\.toml: not valid TOML"):
        load_score_model(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(DEFAULT_MODEL_PATH.read_text().replace("rework = -10", "rework = 'x'"))
    with pytest.raises(ScoreModelError, match=r"wrong.toml: key 'impacts.rework' = 'x'"):
        load_score_model(wrong)


def test_a_new_model_version_rescores_the_same_journeys(tmp_path: Path) -> None:
    v2 = tmp_path / "score_model_v2.toml"
    v2.write_text(
        DEFAULT_MODEL_PATH.read_text()
        .replace('version = "v1"', 'version = "v2"')
        .replace("rework = -10", "rework = -20")
        .replace('front_desk = ["sales", "customer_service"]', 'front_desk = ["sales"]')
    )
    model_v2 = load_score_model(v2)
    factory = TouchpointFactory()
    tps = [
        factory("contact", 0, resolved=True),
        factory("rework", 5, department="maintenance", reason="repair redone"),
        factory("contact", 20 * 24, resolved=False, wait_seconds=500, channel="phone"),
        factory("invoice_corrected", 20 * 24 + 1, department="billing", invoice_id="I-1"),
    ]
    old_books, _ = play(tps, until=at(30 * 24))
    new_books, _ = play(tps, model=model_v2, until=at(30 * 24))
    old = old_books["cust-1"].scores(MODEL)
    new = new_books["cust-1"].scores(model_v2)
    assert [s.journey_id for s in new] == [s.journey_id for s in old]  # same journeys
    assert [[x.signal_id for x in s.signals] for s in new] == [
        [x.signal_id for x in s.signals] for s in old
    ]  # same findings, so old and new rows can be joined side by side
    assert [s.score for s in old] == [93.0, 82.0]
    assert [s.score for s in new] == [83.0, 72.0]
    assert {s.score_model for s in new} == {"v2"}
    assert all(x.score_model == "v2" for s in new for x in s.signals)
    # customer_service is no longer front desk in v2: its long wait counts as beyond it
    assert [s.lost_points_beyond_front_desk for s in new] == [20.0, 28.0]


def test_a_book_scored_with_v1_is_rescored_whole_when_v2_arrives(tmp_path: Path) -> None:
    v2 = tmp_path / "v2.toml"
    v2.write_text(
        DEFAULT_MODEL_PATH.read_text()
        .replace('version = "v1"', 'version = "v2"')
        .replace("rework = -10", "rework = -20")
    )
    model_v2 = load_score_model(v2)
    factory = TouchpointFactory()
    first = [factory("rework", 0, department="maintenance"), factory("contact", 1, resolved=True)]
    books, _ = play(first)
    book = books["cust-1"]
    from pipeline.journey import add

    changes = add(book, factory("proactive_update", 2), model_v2)
    (score,) = changes.scores
    assert score.score_model == "v2" and score.score == 87.0  # 100 - 20 + 3 + 4
    assert {s.score_model for s in score.signals} == {"v2"}
    assert {s.signal for s in changes.appeared} == {
        "rework", "first_contact_resolution", "proactive_update"
    }  # fmt: skip
    assert not changes.retracted and not changes.retired  # same journey, same signal ids
