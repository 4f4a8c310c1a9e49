"""The report as one self-contained HTML file: inline CSS and SVG, no script, no network."""

from __future__ import annotations

from html import escape

from pipeline.report import charts
from pipeline.report.data import ReportData, TimelineEntry
from pipeline.report.loop import loop_closure_html
from pipeline.report.words import signal_words

STAGE_ORDER = ("purchase", "delivery", "onboarding", "usage", "service", "billing", "renewal")

CSS = """
body { font-family: Helvetica, Arial, sans-serif; color: #222; margin: 24px auto;
       max-width: 820px; line-height: 1.4; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px;
     border-bottom: 1px solid #ccc; padding-bottom: 4px; }
.meta { color: #555; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 16px; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 6px 9px; min-width: 80px; }
.card b { display: block; font-size: 19px; } .card span { font-size: 12px; color: #555; }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin-top: 8px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; } tr.signal td { color: #b71c1c; }
tr.gain td { color: #2e7d32; }
.lead { font-size: 15px; } .basis { color: #555; font-size: 12px; margin-top: 10px; }
svg { max-width: 100%; height: auto; }
section { break-inside: avoid; }
@media print { body { margin: 0; } * { -webkit-print-color-adjust: exact;
               print-color-adjust: exact; } }
"""


def stage_order(stages: set[str]) -> list[str]:
    known = [s for s in STAGE_ORDER if s in stages]
    return known + sorted(stages - set(known))


def department_order(data: ReportData) -> list[str]:
    totals: dict[str, float] = {}
    for (department, _), lost in data.heatmap.items():
        totals[department] = totals.get(department, 0.0) + lost
    return sorted(totals, key=lambda d: (-totals[d], d))


def headline(data: ReportData) -> str:
    """The one sentence a reader should take away."""
    if not data.breakdowns:
        return "No experience points were lost in this period."
    (department, stage), lost = data.top_cells()[0]
    return (
        f"Most experience is lost in <b>{escape(department)} × {escape(stage)}</b>: "
        f"{lost:,.0f} points, {data.share_of_lost(lost):.0%} of all points lost."
    )


def _cards(data: ReportData) -> str:
    share = data.share_beyond_front_desk
    rejected = sum(data.rejections.values())
    cards = [
        (f"{data.journeys:,}", "journeys"),
        (f"{data.touchpoints:,}", "touchpoints"),
        (f"{data.average_score:.1f}" if data.average_score is not None else "–", "average score"),
        (f"{data.good:,} / {data.neutral:,} / {data.poor:,}", "good / neutral / poor"),
        (f"{data.lost_points:,.0f}", "points lost"),
        (f"{share:.0%}" if share is not None else "–", "of them beyond the front desk"),
        (f"{data.word_of_mouth:+,}", "net stories told"),
        (f"{rejected:,}", "rejected events"),
    ]
    return (
        "<div class='cards'>"
        + "".join(
            f"<div class='card'><b>{value}</b><span>{label}</span></div>" for value, label in cards
        )
        + "</div>"
        + f"<p class='basis'>Points: {escape(data.signal_basis)}. "
        f"Journeys: {escape(data.journey_basis)}.</p>"
    )


def _breakdowns(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td class='num'>{rank}</td><td>{escape(b.department)} × {escape(b.stage)}</td>"
        f"<td>{escape(signal_words(b.signal))}</td><td class='num'>{b.signals:,}</td>"
        f"<td class='num'>{b.lost_points:,.0f}</td>"
        f"<td class='num'>{data.share_of_lost(b.lost_points):.0%}</td>"
        f"<td>{escape(b.example_reason)}<br>"
        f"<small>e.g. {escape(', '.join(b.example_journeys))}</small></td></tr>"
        for rank, b in enumerate(data.breakdowns, start=1)
    )
    return (
        "<table id='breakdowns'><tr><th class='num'>#</th><th>department × stage</th>"
        "<th>what went wrong</th><th class='num'>signals</th><th class='num'>points lost</th>"
        f"<th class='num'>share</th><th>example</th></tr>{rows}</table>"
    )


def _beyond_front_desk(data: ReportData) -> str:
    desk = ", ".join(sorted(data.front_desk)) or "none configured"
    text = (
        f"<p>Of the {data.lost_points:,.0f} points lost, the share lost by departments "
        f"beyond the front desk ({escape(desk)} are the front desk).</p>"
    )
    if data.filter.departments:
        text += (
            f"<p class='basis'>Only the points of {escape(', '.join(data.filter.departments))} "
            "count here (the department filter), as in the heatmap above.</p>"
        )
    return text + charts.share_bar(data.share_beyond_front_desk)


def _word_of_mouth(data: ReportData) -> str:
    if not data.journeys:
        return "<p>No journeys in this period.</p>"
    good, poor = data.good / data.journeys, data.poor / data.journeys
    text = (
        "<p>People tell about 3 others of a good experience and about 18 of a poor one (a "
        "rule of thumb), so one poor journey outweighs six good ones. "
        f"Of {data.journeys:,} journeys, {data.good:,} ({good:.0%}) were good and "
        f"{data.poor:,} ({poor:.0%}) poor: a net {data.word_of_mouth:+,} stories.</p>"
    )
    hit = data.hit_beyond_front_desk
    if hit is not None and hit.journeys:
        text += (
            f"<p>The {hit.journeys:,} journeys that lost points beyond the front desk "
            f"account for {hit.balance:+,} of them; "
            f"the others for {data.word_of_mouth - hit.balance:+,}.</p>"
        )
    return text + charts.word_of_mouth(data.story_groups())


def _row_class(impact: float | None) -> str:
    if impact is None:
        return "event"
    return "gain" if impact > 0 else "signal"


def _timeline(journey_id: str, entries: list[TimelineEntry]) -> str:
    rows = "".join(
        f"<tr class='{_row_class(e.impact)}'>"
        f"<td>{e.at:%Y-%m-%d %H:%M}</td><td>{escape(e.department)}</td>"
        f"<td>{escape(e.stage)}</td><td>{escape(e.what)}</td>"
        f"<td class='num'>{'' if e.impact is None else f'{e.impact:+.0f}'}</td></tr>"
        for e in entries
    )
    return (
        f"<h3>{escape(journey_id)}</h3><table class='timeline'><tr><th>time (UTC)</th>"
        "<th>department</th><th>stage</th><th>what happened</th><th class='num'>points</th>"
        f"</tr>{rows}</table>"
    )


def _rejections(data: ReportData) -> str:
    by_department = [(d or "(unreadable)", float(n)) for d, n in data.rejections_by_department()]
    if not by_department:
        return "<p>No event was rejected.</p>"
    rows = "".join(
        f"<tr><td>{escape(d or '(unreadable)')}</td><td>{escape(code)}</td>"
        f"<td class='num'>{n:,}</td></tr>"
        for (d, code), n in sorted(data.rejections.items(), key=lambda i: (-i[1], i[0]))
    )
    chart = charts.bars(by_department, "rejections", "Rejected events per department")
    return (
        f"{chart}<table><tr><th>department</th><th>reason</th><th class='num'>rejected</th></tr>"
        f"{rows}</table>"
    )


def render(data: ReportData, extra: list[tuple[str, str]] | None = None) -> str:
    """The report's HTML; `extra` adds (title, HTML) sections at the end (`journeys diff`)."""
    stages = stage_order({stage for _, stage in data.heatmap})
    period = (
        f"{data.first_event:%Y-%m-%d} to {data.last_event:%Y-%m-%d}"
        if data.first_event and data.last_event
        else "no journeys"
    )
    timelines = "".join(_timeline(j, entries) for j, entries in data.timelines.items())
    bands = (data.good_at_least, data.poor_below)
    sections = [
        (
            "Where journeys break down",
            f"<p>Points lost per department and stage ({escape(data.signal_basis)}).</p>"
            + charts.heatmap(data.heatmap, department_order(data), stages, data.front_desk),
        ),
        ("Top breakdowns", _breakdowns(data)),
        ("Lost beyond the front desk", _beyond_front_desk(data)),
        (
            "Score trend",
            "<p>Average journey score per day, by the day of each journey's last event. The "
            "axis spans the data, not 0-100.</p>" + charts.trend(data.trend, bands),
        ),
        ("Word of mouth", _word_of_mouth(data)),
        ("Example journeys", timelines or "<p>No journey lost points.</p>"),
        ("Did the loop close?", loop_closure_html(data.loop_closure)),
        ("Rejected events per department", _rejections(data)),
        *(extra or []),
    ]
    body = "".join(f"<section><h2>{title}</h2>{html}</section>" for title, html in sections)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Customer journeys report</title>"
        f"<style>{CSS}</style></head><body>"
        "<h1>Customer journeys: where the experience breaks down</h1>"
        f"<p class='meta'>Journeys {period} · filter: {escape(data.filter.describe())} · "
        f"score model {escape(data.model_version)} · "
        f"generated {data.generated_at:%Y-%m-%d %H:%M} UTC</p>"
        f"<p class='lead'>{headline(data)}</p>{_cards(data)}{body}</body></html>"
    )
