"""The report's charts: matplotlib figures inlined as SVG, so the file needs no script or
network and stays sharp in print.

Text stays text (`svg.fonttype: none`): a reader can search and copy the numbers, and tests
can read them. `bbox_inches="tight"` sizes each picture to what it draws, so a legend or a
label is never cut off however few columns a chart has. Every chart also writes its numbers
as text, so it still reads in black and white.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from html import escape

import matplotlib as mpl
import numpy as np
from matplotlib import dates
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from pipeline.report.data import StoryGroup

FONTS = ["Helvetica", "Arial", "DejaVu Sans", "sans-serif"]
HEAT = mpl.colormaps["Reds"].with_extremes(bad="white")
GOOD, POOR, INK, MUTED = "#2e7d32", "#c62828", "#222222", "#666666"
_PROLOG = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


@contextmanager
def _style(element_id: str) -> Iterator[None]:
    settings = {
        "svg.fonttype": "none",
        # Several charts share one HTML page: ids inside each SVG (clip paths) must differ.
        "svg.hashsalt": element_id,
        "svg.id": element_id,
        "font.family": "sans-serif",
        "font.sans-serif": FONTS,
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": "#999999",
        "xtick.color": MUTED,
        "ytick.color": MUTED,
        "svg.image_inline": True,
    }
    with mpl.rc_context(settings):  # type: ignore[arg-type]  # stubs list keys as Literals
        yield


def _inline(figure: Figure, element_id: str, label: str) -> str:
    """The figure as an <svg> element to paste into HTML (no XML prolog or doctype)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.05,
                   metadata={"Date": None, "Creator": None})  # fmt: skip
    # The RDF metadata names creativecommons.org and purl.org: harmless, but a reader
    # checking that the file fetches nothing should not have to wonder.
    text = _METADATA.sub("", _PROLOG.sub("", buffer.getvalue(), count=1), count=1)
    return text.replace(
        "<svg ",
        f"<svg role='img' aria-label='{escape(label)}' ",
        1,
    ).replace(">", f"><title>{escape(label)}</title>", 1)


def heatmap(
    cells: dict[tuple[str, str], float],
    departments: Sequence[str],
    stages: Sequence[str],
    front_desk: frozenset[str] = frozenset(),
) -> str:
    """Points lost per department (rows) x stage (columns); darker = more lost."""
    rows, cols = max(len(departments), 1), max(len(stages), 1)
    grid = [[cells.get((d, s), 0.0) for s in stages] for d in departments] or [[0.0]]
    values = np.ma.masked_equal(grid, 0.0)  # nothing lost: white, not the palest red
    peak = max(cells.values(), default=0.0) or 1.0
    with _style("heatmap"):
        figure = Figure(figsize=(1.9 + 0.85 * cols, max(1.4, 0.5 + 0.42 * rows)))
        axes = figure.add_subplot()
        norm = Normalize(0, peak)
        mesh = axes.pcolormesh(values, cmap=HEAT, norm=norm, edgecolors="#dddddd", linewidth=1)
        for row, department in enumerate(departments):
            for col, stage in enumerate(stages):
                lost = cells.get((department, stage), 0.0)
                if lost:
                    colour = "white" if lost / peak > 0.55 else INK
                    axes.text(col + 0.5, row + 0.5, f"{lost:,.0f}", ha="center", va="center",
                              color=colour, gid=f"cell-{department}-{stage}")  # fmt: skip
        axes.set_xticks([c + 0.5 for c in range(len(stages))], list(stages))
        axes.xaxis.tick_top()
        labels = [d + (" (front desk)" if d in front_desk else "") for d in departments]
        axes.set_yticks([r + 0.5 for r in range(len(departments))], labels)
        axes.set_xlim(0, cols)
        axes.set_ylim(rows, 0)  # the department losing most on top
        axes.tick_params(length=0)
        for spine in axes.spines.values():
            spine.set_visible(False)
        bar = figure.colorbar(mesh, ax=axes, fraction=0.05 if cols > 2 else 0.15, pad=0.03)
        bar.set_label("points lost (darker = more)", color=MUTED)
        bar.outline.set_visible(False)
        return _inline(figure, "heatmap", "Points lost by department and stage")


def score_range(scores: Sequence[float], span: float = 10.0) -> tuple[float, float]:
    """The score axis: the data's range padded to whole fives, at least `span` points tall.

    A fixed 0-100 axis squeezes days between 78 and 100 into a fifth of the height and
    flattens the one dip a reader should see.
    """
    if not scores:
        return 0.0, 100.0
    low, high = min(scores), max(scores)
    pad = max((high - low) * 0.1, 1.0)
    low, high = math.floor((low - pad) / 5) * 5, math.ceil((high + pad) / 5) * 5
    while high - low < span:
        low, high = low - 2.5, high + 2.5
    return max(float(low), 0.0), min(float(high), 100.0)


def trend(days: Sequence[tuple[date, int, float, int, int]], bands: tuple[float, float]) -> str:
    """Average journey score per day, on an axis fitted to the data, with the band lines
    that fall inside it."""
    good_from, poor_below = bands
    scores = [score for _, _, score, _, _ in days]
    low, high = score_range(scores)
    with _style("trend"):
        figure = Figure(figsize=(7.6, 2.4))
        axes = figure.add_subplot()
        if days:
            axes.plot(dates.date2num([d for d, *_ in days]), scores, color="#1f4e99",
                      marker="o", markersize=3, linewidth=1.8, gid="daily-scores")  # fmt: skip
            worst = min(range(len(days)), key=lambda i: (scores[i], i))
            axes.annotate(f"lowest {scores[worst]:.1f} ({days[worst][0]:%b %d})",
                          (dates.date2num(days[worst][0]), scores[worst]), xytext=(-7, 0),
                          textcoords="offset points", ha="right", va="center",
                          color=MUTED, fontsize=8)  # fmt: skip
        for value, name in ((good_from, "good"), (poor_below, "poor")):
            if low <= value <= high:
                axes.axhline(value, color="#999999", linestyle="--", linewidth=0.8)
                axes.text(1.0, value, f" {name} {value:g}", transform=axes.get_yaxis_transform(),
                          va="center", color=MUTED, fontsize=8)  # fmt: skip
        axes.set_ylim(low, high)
        axes.set_ylabel("average score")
        axes.xaxis.set_major_formatter(dates.DateFormatter("%b %d"))
        axes.grid(axis="y", color="#eeeeee")
        return _inline(figure, "trend", f"Journey score trend, axis {low:g} to {high:g}")


def word_of_mouth(groups: Sequence[StoryGroup]) -> str:
    """Stories told per group of journeys: +3 per good one, -18 per poor one, and the net."""
    with _style("word-of-mouth"):
        figure = Figure(figsize=(7.6, 0.5 + 0.55 * max(len(groups), 1)))
        axes = figure.add_subplot()
        rows = range(len(groups))
        told_good = [3 * g.good for g in groups]
        told_poor = [-18 * g.poor for g in groups]
        axes.barh(rows, told_good, color=GOOD, height=0.6)
        axes.barh(rows, told_poor, color=POOR, height=0.6)
        reach = max([*told_good, *(-t for t in told_poor), 1])
        for row, group in enumerate(groups):
            axes.text(told_poor[row] - reach * 0.02, row, f"−{18 * group.poor:,}" if group.poor
                      else "0", ha="right", va="center", color=POOR)  # fmt: skip
            axes.text(told_good[row] + reach * 0.02, row, f"+{3 * group.good:,}", ha="left",
                      va="center", color=GOOD)  # fmt: skip
            axes.text(1.02, row, f"net {group.balance:+,}", transform=axes.get_yaxis_transform(),
                      ha="left", va="center", color=INK, fontweight="bold")  # fmt: skip
        axes.set_yticks(list(rows), [f"{g.name} ({g.journeys:,})" for g in groups])
        axes.set_xlim(-reach * 1.3, reach * 1.3)
        axes.set_ylim(len(groups) - 0.5, -0.5)
        axes.axvline(0, color="#333333", linewidth=0.8)
        axes.set_xticks([])
        axes.spines["bottom"].set_visible(False)
        axes.spines["left"].set_visible(False)
        axes.tick_params(length=0)
        axes.set_xlabel("stories told: red −18 per poor journey, green +3 per good one",
                        color=MUTED)  # fmt: skip
        return _inline(figure, "word-of-mouth", "Word-of-mouth balance by group of journeys")


def bars(items: Sequence[tuple[str, float]], element_id: str, label: str) -> str:
    """Horizontal bars, largest on top, each with its value written after it."""
    with _style(element_id):
        figure = Figure(figsize=(7.6, 0.3 + 0.28 * max(len(items), 1)))
        axes = figure.add_subplot()
        names = [name for name, _ in items]
        values = [value for _, value in items]
        axes.barh(range(len(items)), values, color="#555555", height=0.65)
        peak = max(values, default=0.0) or 1.0
        for row, value in enumerate(values):
            axes.text(value + peak * 0.01, row, f"{value:,.0f}", va="center", color=INK)
        axes.set_yticks(range(len(items)), names)
        axes.set_ylim(len(items) - 0.5, -0.5)
        axes.set_xlim(0, peak * 1.12)
        axes.set_xticks([])
        axes.spines["bottom"].set_visible(False)
        axes.tick_params(length=0)
        return _inline(figure, element_id, label)


def share_bar(share: float | None) -> str:
    """One bar split into front desk and beyond it, labelled with both percentages."""
    beyond = share or 0.0
    with _style("beyond-front-desk"):
        figure = Figure(figsize=(7.6, 0.55))
        axes = figure.add_subplot()
        axes.barh([0], [1 - beyond], color="#90a4ae", height=1)
        axes.barh([0], [beyond], left=[1 - beyond], color=POOR, height=1)
        axes.set_xlim(0, 1)
        axes.set_axis_off()
        axes.text(0, -0.75, f"front desk {1 - beyond:.0%}", va="top", color=INK)
        axes.text(1, -0.75, f"beyond the front desk {beyond:.0%}", va="top", ha="right",
                  color=INK)  # fmt: skip
        return _inline(figure, "beyond-front-desk",
                       f"Share of lost points beyond the front desk {beyond:.0%}")  # fmt: skip
