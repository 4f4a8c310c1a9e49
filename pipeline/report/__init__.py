"""The shareable report: one self-contained HTML file, and its terminal summary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.journey import ScoreModel
from pipeline.report.data import Breakdown, ReportData, ReportFilter, StoryGroup, TimelineEntry
from pipeline.report.html import render
from pipeline.report.queries import load_report
from pipeline.report.summary import summary_lines
from pipeline.store import Store


def write_report(
    store: Store,
    path: Path,
    where: ReportFilter | None = None,
    now: datetime | None = None,
    model: ScoreModel | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> ReportData:
    """Query the store for the journeys `model` scored (default v1), write the HTML report
    to `path` (with `extra` sections), return what it shows."""
    data = load_report(store, where or ReportFilter(), now, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, extra), encoding="utf-8")
    return data


__all__ = [
    "Breakdown",
    "ReportData",
    "ReportFilter",
    "StoryGroup",
    "TimelineEntry",
    "load_report",
    "render",
    "summary_lines",
    "write_report",
]
