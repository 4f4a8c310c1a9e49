"""Charts as inline SVG: pictures that need no script or network and stay sharp in print.

Every chart also prints its numbers as text (cell values, axis labels), so it still reads in
black and white.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

FONT = "font-family='Helvetica, Arial, sans-serif'"
_REDS = ((255, 245, 240), (252, 187, 161), (251, 106, 74), (203, 24, 29), (103, 0, 13))


def _svg(width: int, height: int, body: list[str], label: str, element_id: str) -> str:
    return (
        f"<svg id='{element_id}' xmlns='http://www.w3.org/2000/svg' role='img' "
        f"aria-label='{escape(label)}' viewBox='0 0 {width} {height}' width='{width}' "
        f"height='{height}' {FONT}><title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, size: int = 12, **attrs: str) -> str:
    extra = "".join(f" {k.replace('_', '-')}='{v}'" for k, v in attrs.items())
    return f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}'{extra}>{escape(text)}</text>"


def red(share: float) -> str:
    """A colour on a white-to-dark-red scale for a share in [0, 1]."""
    share = min(max(share, 0.0), 1.0) * (len(_REDS) - 1)
    low = int(share)
    high = min(low + 1, len(_REDS) - 1)
    mix = share - low
    rgb = [round(a + (b - a) * mix) for a, b in zip(_REDS[low], _REDS[high], strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heatmap(
    cells: dict[tuple[str, str], float],
    departments: Sequence[str],
    stages: Sequence[str],
    front_desk: frozenset[str] = frozenset(),
) -> str:
    """Points lost per department (rows) x stage (columns); darker = more lost."""
    left, top, cell_w, cell_h = 170, 40, 92, 38
    width = left + cell_w * max(len(stages), 1) + 10
    height = top + cell_h * max(len(departments), 1) + 30
    peak = max(cells.values(), default=0.0) or 1.0
    body = [
        _text(left + i * cell_w + cell_w / 2, top - 10, s, 12, text_anchor="middle")
        for i, s in enumerate(stages)
    ]
    for row, department in enumerate(departments):
        y = top + row * cell_h
        label = department + (" (front desk)" if department in front_desk else "")
        body.append(_text(left - 8, y + cell_h / 2 + 4, label, 12, text_anchor="end"))
        for col, stage in enumerate(stages):
            lost = cells.get((department, stage), 0.0)
            share = lost / peak
            x = left + col * cell_w
            fill = red(share) if lost else "#ffffff"
            body.append(
                f"<rect class='cell' x='{x}' y='{y}' width='{cell_w - 2}' height='{cell_h - 2}' "
                f"fill='{fill}' stroke='#ddd' data-department='{escape(department)}' "
                f"data-stage='{escape(stage)}' data-lost='{lost:.0f}'/>"
            )
            if lost:
                colour = "#fff" if share > 0.55 else "#222"
                body.append(
                    _text(
                        x + cell_w / 2 - 1,
                        y + cell_h / 2 + 4,
                        f"{lost:,.0f}",
                        12,
                        text_anchor="middle",
                        fill=colour,
                    )
                )
    body.append(_text(left, height - 8, "points lost (darker = more)", 11, fill="#555"))
    return _svg(width, height, body, "Points lost by department and stage", "heatmap")


def trend(days: Sequence[tuple[date, int, float, int, int]]) -> str:
    """Average journey score per day, with the good (75) and poor (50) band lines."""
    left, top, width, height = 46, 16, 760, 240
    plot_w, plot_h = width - left - 16, height - top - 40
    body = []
    for value, label in ((100, "100"), (75, "good 75"), (50, "poor 50"), (0, "0")):
        y = top + plot_h * (1 - value / 100)
        dash = " stroke-dasharray='4 3'" if value in (50, 75) else ""
        body.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='#bbb'{dash}/>"
        )
        body.append(_text(left - 4, y + 4, label.split()[-1], 10, text_anchor="end"))
        if value in (50, 75):
            body.append(_text(left + plot_w - 2, y - 3, label, 10, text_anchor="end", fill="#777"))
    step = plot_w / max(len(days) - 1, 1)
    points = [
        (left + i * step, top + plot_h * (1 - score / 100))
        for i, (_, _, score, _, _) in enumerate(days)
    ]
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f"<polyline points='{path}' fill='none' stroke='#1f4e99' stroke-width='2'/>")
        body += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='#1f4e99'/>" for x, y in points]
    every = max(len(days) // 8, 1)
    for i, (day, *_rest) in enumerate(days):
        if i % every == 0 or i == len(days) - 1:
            x = left + i * step
            body.append(_text(x, top + plot_h + 16, f"{day:%b %d}", 10, text_anchor="middle"))
    body.append(
        _text(left, height - 6, "average journey score per day (by last event)", 11, fill="#555")
    )
    return _svg(width, height, body, "Journey score trend", "trend")


def word_of_mouth(good: int, poor: int) -> str:
    """Stories told: +3 per good journey against -18 per poor one, and the balance."""
    told_good, told_poor = 3 * good, 18 * poor
    balance = told_good - told_poor
    width, height, middle, half = 760, 150, 380, 330
    peak = max(told_good, told_poor, 1)
    good_w, poor_w = half * told_good / peak, half * told_poor / peak
    sign = "+" if balance >= 0 else "−"
    body = [
        f"<rect x='{middle}' y='30' width='{good_w:.1f}' height='34' fill='#2e7d32'/>",
        f"<rect x='{middle - poor_w:.1f}' y='30' width='{poor_w:.1f}' height='34' fill='#c62828'/>",
        f"<line x1='{middle}' x2='{middle}' y1='22' y2='72' stroke='#333'/>",
        _text(middle + 6, 20, f"+{told_good:,} told by {good:,} good journeys (x3)", 12),
        _text(
            middle - 6,
            20,
            f"−{told_poor:,} told by {poor:,} poor journeys (x18)",
            12,
            text_anchor="end",
        ),
        _text(
            middle,
            110,
            f"balance: {sign}{abs(balance):,} stories",
            26,
            text_anchor="middle",
            font_weight="bold",
            fill="#2e7d32" if balance >= 0 else "#c62828",
        ),
        _text(
            middle,
            136,
            "word-of-mouth balance = 3 × good − 18 × poor",
            11,
            text_anchor="middle",
            fill="#555",
        ),
    ]
    return _svg(width, height, body, f"Word-of-mouth balance {balance}", "word-of-mouth")


def bars(items: Sequence[tuple[str, float]], element_id: str, label: str, unit: str = "") -> str:
    """Horizontal bars, largest first, each with its value written after it."""
    left, row_h, width = 170, 26, 760
    height = row_h * max(len(items), 1) + 12
    peak = max((value for _, value in items), default=0.0) or 1.0
    body = []
    for i, (name, value) in enumerate(items):
        y = 6 + i * row_h
        w = (width - left - 90) * value / peak
        body.append(_text(left - 8, y + 15, name, 12, text_anchor="end"))
        body.append(f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{row_h - 8}' fill='#555'/>")
        body.append(_text(left + w + 6, y + 15, f"{value:,.0f}{unit}", 12))
    return _svg(width, height, body, label, element_id)


def share_bar(share: float | None) -> str:
    """One bar split into front desk and beyond it, labelled with both percentages."""
    width, height, left, bar_w = 760, 64, 10, 740
    beyond = share or 0.0
    split = left + bar_w * (1 - beyond)
    body = [
        f"<rect x='{left}' y='8' width='{split - left:.1f}' height='30' fill='#90a4ae'/>",
        f"<rect x='{split:.1f}' y='8' width='{left + bar_w - split:.1f}' height='30' "
        "fill='#c62828'/>",
        _text(left, 56, f"front desk {1 - beyond:.0%}", 12),
        _text(left + bar_w, 56, f"beyond the front desk {beyond:.0%}", 12, text_anchor="end"),
    ]
    return _svg(
        width,
        height,
        body,
        f"Share of lost points beyond the front desk {beyond:.0%}",
        "beyond-front-desk",
    )
