"""The report's pictures and HTML, from hand-made report data (no store)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html import unescape

import pytest

from pipeline.journey import load_score_model
from pipeline.report import (
    Breakdown,
    ReportData,
    ReportFilter,
    StoryGroup,
    TimelineEntry,
    charts,
    render,
)
from pipeline.report.summary import summary_lines
from pipeline.report.words import SIGNAL_WORDS, signal_words

NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)


def sample() -> ReportData:
    data = ReportData(filter=ReportFilter(), generated_at=NOW,
                      front_desk=frozenset({"customer_service", "sales"}))  # fmt: skip
    data.journeys, data.touchpoints, data.good, data.neutral, data.poor = 120, 900, 90, 20, 10
    data.average_score = 81.5
    data.hit_beyond_front_desk = StoryGroup("lost points beyond the front desk", 30, 12, 9)
    data.first_event, data.last_event = datetime(2026, 3, 1, tzinfo=UTC), NOW
    data.heatmap = {
        ("maintenance", "service"): 600.0,
        ("customer_service", "service"): 250.0,
        ("billing", "renewal"): 150.0,
    }
    # Scores between 78 and 100 with one dip: the axis must show it, not squash it.
    data.trend = [(date(2026, 3, d), 4, 96.0 + d / 5, 3, 1) for d in range(1, 11)]
    data.trend[6] = (date(2026, 3, 7), 4, 78.0, 1, 2)
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


def texts(picture: str) -> list[str]:
    """The words a chart shows (matplotlib keeps them as <text> elements)."""
    return [unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", picture)]


def test_word_of_mouth_is_three_per_good_minus_eighteen_per_poor() -> None:
    data = sample()
    assert data.word_of_mouth == 3 * 90 - 18 * 10
    assert [g.balance for g in data.story_groups()] == [90, 3 * 12 - 18 * 9, 3 * 78 - 18 * 1]
    assert ReportData(filter=ReportFilter(), generated_at=NOW).share_beyond_front_desk is None


def test_every_points_figure_is_a_share_of_the_same_total() -> None:
    """The top cell's share and the share beyond the front desk both divide by the points
    of the same signals (they once came from two queries on two bases)."""
    data = sample()
    assert data.lost_points == 1000.0
    assert data.share_of_lost(600.0) == pytest.approx(0.6)
    assert data.share_beyond_front_desk == pytest.approx(0.75)  # all but customer_service
    only_maintenance = ReportData(filter=ReportFilter(departments=("maintenance",)),
                                  generated_at=NOW, front_desk=frozenset({"sales"}))  # fmt: skip
    only_maintenance.heatmap = {("maintenance", "service"): 40.0}
    assert only_maintenance.share_beyond_front_desk == 1.0
    assert "attributed to maintenance" in only_maintenance.signal_basis
    assert "that maintenance took part in" in only_maintenance.journey_basis


def test_heatmap_has_a_cell_per_loss_and_names_the_front_desk() -> None:
    data = sample()
    picture = charts.heatmap(data.heatmap, ["maintenance", "customer_service", "billing"],
                             ["service", "renewal"], frozenset({"customer_service"}))  # fmt: skip
    assert picture.startswith("<svg") and 'id="heatmap"' in picture
    assert re.search(r'<g id="cell-maintenance-service">.*?>600</text>', picture, re.DOTALL)
    assert len(re.findall(r'<g id="cell-', picture)) == 3
    words = texts(picture)
    assert "customer_service (front desk)" in words
    assert "points lost (darker = more)" in words


def test_a_one_column_heatmap_keeps_its_legend_inside_the_picture() -> None:
    picture = charts.heatmap({("maintenance", "service"): 5224.0}, ["maintenance"], ["service"])
    width = float(re.search(r'width="([\d.]+)pt"', picture).group(1))  # type: ignore[union-attr]
    assert "points lost (darker = more)" in texts(picture)
    # bbox_inches="tight" grows the picture to the legend; the hand-built SVG was 272 px wide
    # with the legend drawn from x=170 onwards, so it was cut off.
    assert width > 150


def test_trend_axis_fits_the_data_so_the_dip_shows() -> None:
    scores = [score for _, _, score, _, _ in sample().trend]
    low, high = charts.score_range(scores)
    assert 70 <= low <= 78 and high == 100
    assert charts.score_range([90.0, 90.0]) == (85.0, 95.0)  # flat data: at least 10 points
    assert charts.score_range([]) == (0.0, 100.0)
    picture = charts.trend(sample().trend, (75.0, 50.0))
    words = texts(picture)
    assert "0" not in words and "50" not in words, "the axis still starts at 0"
    assert "good 75" in words and "poor 50" not in words  # band lines only where in range
    assert "lowest 78.0 (Mar 07)" in words
    assert 'id="daily-scores"' in picture


def test_signal_codes_read_as_words() -> None:
    # Every signal the model scores: a fixed impact each, and long waits (an impact per
    # threshold waited).
    kinds = {*load_score_model().impacts, "long_wait"}
    assert set(SIGNAL_WORDS) == kinds
    html = render(sample())
    assert "broken promises" in html and "customers had to explain again" in html
    for code in kinds:
        assert code not in html, code
    assert all(code not in line for line in summary_lines(sample()) for code in kinds)
    assert signal_words("a_newer_signal") == "a newer signal"


def test_word_of_mouth_is_told_with_its_context() -> None:
    html = render(sample())
    assert "Of 120 journeys, 90 (75%) were good and 10 (8%) poor: a net +90 stories." in html
    assert "The 30 journeys that lost points beyond the front desk account for -126" in html
    picture = charts.word_of_mouth(sample().story_groups())
    assert {"net +90", "net -126", "net +216"} <= set(texts(picture))


def test_the_report_is_self_contained_and_names_the_top_breakdown() -> None:
    html = render(sample())
    for element_id in ("heatmap", "trend", "word-of-mouth", "rejections", "beyond-front-desk"):
        assert f'id="{element_id}"' in html, element_id
    assert "id='breakdowns'" in html
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "http://" not in html.replace("http://www.w3.org/", "")
    assert not re.search(r"(?:href|url)\s*[=(]\s*['\"]?https?:", html)
    assert "Most experience is lost in <b>maintenance × service</b>: 600 points, 60%" in html
    assert "beyond the front desk 75%" in html
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
    assert lines[2] == "  1. maintenance x service: 600 points, 60% (broken promises)"
    assert "lost beyond the front desk: 75% of 1,000 points" in lines
    assert any("signals attributed to any department" in line for line in lines)
    assert any("word-of-mouth balance: +90" in line for line in lines)
    assert any("the 30 journeys that lost points beyond the front desk: -126" in line
               for line in lines)  # fmt: skip
    assert lines[-1] == "rejected events by department: delivery 7, (unreadable) 3"


def test_filter_refuses_naive_or_reversed_times() -> None:
    with pytest.raises(ValueError, match="since"):
        ReportFilter(since=datetime(2026, 3, 1))  # noqa: DTZ001 - the naive value under test
    with pytest.raises(ValueError, match="before"):
        ReportFilter(since=NOW, until=datetime(2026, 3, 1, tzinfo=UTC))
    described = ReportFilter(departments=("billing",), since=datetime(2026, 3, 1, tzinfo=UTC))
    assert described.describe() == "2026-03-01 00:00 UTC to now; billing"
    assert described.params()["departments"] == "billing"
