"""The report's pictures and HTML, from hand-made report data (no store)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from pipeline.report import Breakdown, ReportData, ReportFilter, TimelineEntry, render, svg
from pipeline.report.summary import summary_lines

NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)


def sample() -> ReportData:
    data = ReportData(filter=ReportFilter(), generated_at=NOW)
    data.journeys, data.touchpoints, data.good, data.neutral, data.poor = 120, 900, 90, 20, 10
    data.average_score, data.lost_points, data.lost_beyond_front_desk = 81.5, 1000.0, 700.0
    data.first_event, data.last_event = datetime(2026, 3, 1, tzinfo=UTC), NOW
    data.heatmap = {
        ("maintenance", "service"): 600.0,
        ("customer_service", "service"): 250.0,
        ("billing", "renewal"): 150.0,
    }
    data.trend = [(date(2026, 3, d), 4, 80.0 + d / 2, 3, 1) for d in range(1, 11)]
    data.breakdowns = [
        Breakdown("maintenance", "service", "promise_broken", 40, 600.0,
                  "Promise 'technician visit' due ... was not kept", ["CASE-1", "CASE-2"]),
        Breakdown("customer_service", "service", "repeat_contact", 30, 250.0, "explain again",
                  ["CASE-1"]),
    ]  # fmt: skip
    data.timelines = {
        "CASE-1": [
            TimelineEntry(datetime(2026, 3, 2, tzinfo=UTC), "maintenance", "service",
                          "promise made: technician visit"),
            TimelineEntry(datetime(2026, 3, 3, tzinfo=UTC), "maintenance", "service",
                          "Promise 'technician visit' was not kept", -15.0),
        ]
    }  # fmt: skip
    data.rejections = {("delivery", "naive_timestamp"): 7, ("", "not_json"): 3}
    return data


def test_word_of_mouth_is_three_per_good_minus_eighteen_per_poor() -> None:
    data = sample()
    assert data.word_of_mouth == 3 * 90 - 18 * 10
    assert data.share_beyond_front_desk == pytest.approx(0.7)
    assert ReportData(filter=ReportFilter(), generated_at=NOW).share_beyond_front_desk is None


def test_heatmap_has_a_cell_per_department_and_stage_darkest_where_most_is_lost() -> None:
    data = sample()
    picture = svg.heatmap(data.heatmap, ["maintenance", "customer_service", "billing"],
                          ["service", "renewal"], frozenset({"customer_service"}))  # fmt: skip
    cells = re.findall(r"data-department='(\w+)' data-stage='(\w+)' data-lost='(\d+)'", picture)
    assert len(cells) == 6
    assert ("maintenance", "service", "600") in cells
    fills = dict(re.findall(r"fill='(#[0-9a-f]{6})' stroke='#ddd' data-department='(\w+)'"
                            r" data-stage='service'", picture))  # fmt: skip
    assert fills["#67000d"] == "maintenance"
    assert "customer_service (front desk)" in picture


def test_colour_scale_runs_from_white_to_dark_red() -> None:
    assert svg.red(0) == "#fff5f0"
    assert svg.red(1) == "#67000d"
    assert svg.red(-3) == svg.red(0) and svg.red(7) == svg.red(1)


def test_trend_plots_one_point_per_day_on_a_0_to_100_scale() -> None:
    picture = svg.trend(sample().trend)
    assert picture.count("<circle") == 10
    assert "good 75" in picture and "poor 50" in picture
    assert svg.trend([]).startswith("<svg id='trend'")


def test_word_of_mouth_figure_states_the_balance() -> None:
    assert "balance: +90 stories" in svg.word_of_mouth(90, 10)
    assert "balance: −90 stories" in svg.word_of_mouth(0, 5)


def test_the_report_is_self_contained_and_names_the_top_breakdown() -> None:
    html = render(sample(), frozenset({"customer_service", "sales"}))
    for element_id in ("heatmap", "trend", "word-of-mouth", "breakdowns", "rejections"):
        assert f"id='{element_id}'" in html
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert not re.search(r"(?:href|url)\s*[=(]\s*['\"]?https?:", html)
    assert "Most experience is lost in <b>maintenance × service</b>" in html
    assert "beyond the front desk 70%" in html
    assert "-15" in html and "CASE-1" in html


def test_text_from_the_data_is_escaped() -> None:
    data = sample()
    data.heatmap = {("<script>alert(1)</script>", "service"): 5.0}
    assert "<script>alert" not in render(data)


def test_an_empty_period_still_renders() -> None:
    html = render(ReportData(filter=ReportFilter(), generated_at=NOW))
    assert "No experience points were lost" in html
    assert "No event was rejected" in html


def test_summary_names_the_top_cell_first_and_the_headline_figures() -> None:
    lines = summary_lines(sample())
    assert lines[2].startswith("  1. maintenance x service: 600 points, 60%")
    assert "(promise_broken)" in lines[2]
    assert any("lost beyond the front desk: 70%" in line for line in lines)
    assert any("word-of-mouth balance: +90" in line for line in lines)
    assert lines[-1] == "rejected events by department: delivery 7, (unreadable) 3"


def test_filter_refuses_naive_or_reversed_times() -> None:
    with pytest.raises(ValueError, match="since"):
        ReportFilter(since=datetime(2026, 3, 1))  # noqa: DTZ001 - the naive value under test
    with pytest.raises(ValueError, match="before"):
        ReportFilter(since=NOW, until=datetime(2026, 3, 1, tzinfo=UTC))
    described = ReportFilter(departments=("billing",), since=datetime(2026, 3, 1, tzinfo=UTC))
    assert described.describe() == "2026-03-01 00:00 UTC to now; billing"
    assert described.params()["departments"] == "billing"
