"""The report over real rows: a simulated company's messages through the worker's core (the
rows a worker would store, `pipeline.stream.offline`), stored in chdb, read back through the
Store, rendered, and opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest

from pipeline.journey import load_score_model
from pipeline.report import ReportFilter, load_report, summary_lines, write_report
from pipeline.simulate import SimulationConfig, parse_breakdowns, simulate
from pipeline.store.embedded import EmbeddedStore
from pipeline.stream.offline import offline_rows, write_rows
from tests.support.chromium import assert_not_blank, chromium
from tests.support.scored_month import write_scored_month

START = datetime(2026, 3, 1, tzinfo=UTC)


def fill(store: EmbeddedStore, preset: str, customers: int = 400) -> None:
    config = SimulationConfig(
        customers=customers, start=START, seed=3, breakdowns=parse_breakdowns([preset])
    )
    deliveries, _ = simulate(config)
    # Taken in at the period's end, as the demo's worker takes a month sent at once.
    messages = ((delivery.value, config.end) for delivery in deliveries)
    write_rows(store, offline_rows(messages, config.end, load_score_model()))


def test_report_names_the_planted_breakdown_and_reads_well_in_chromium(
    fresh_store: EmbeddedStore, tmp_path: Path
) -> None:
    fill(fresh_store, "billing-renewal")
    html = tmp_path / "report.html"
    data = write_report(fresh_store, html)

    assert data.top_cells()[0][0] == ("billing", "renewal")
    assert (data.breakdowns[0].department, data.breakdowns[0].stage) == ("billing", "renewal")
    assert summary_lines(data)[2].startswith("  1. billing x renewal:")
    assert data.timelines and all(data.timelines.values())
    assert sum(data.rejections.values()) > 0 and data.word_of_mouth != 0

    dom = chromium(tmp_path, "--dump-dom", html.as_uri()).stdout.decode()
    for element_id in ("heatmap", "trend", "word-of-mouth"):
        assert f'id="{element_id}"' in dom, element_id
    assert "billing × renewal" in dom

    png = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={png}", "--window-size=900,1800", html.as_uri())
    assert_not_blank(png)


# Appended to a report: lists every chart text that reaches outside its picture (so it is
# cut off on screen and in print) on the body's data-clipped attribute.
CLIP_CHECK = """<script>
const clipped = [];
for (const svg of document.querySelectorAll("body svg")) {
  const box = svg.getBoundingClientRect();
  for (const text of svg.querySelectorAll("text")) {
    const r = text.getBoundingClientRect();
    if (r.width && (r.left < box.left - 1 || r.right > box.right + 1
                    || r.top < box.top - 1 || r.bottom > box.bottom + 1)) {
      clipped.push(svg.id + ": " + text.textContent.trim());
    }
  }
}
document.body.setAttribute("data-clipped", JSON.stringify(clipped));
</script>"""


def test_one_department_report_counts_points_on_one_basis_and_clips_nothing(
    fresh_store: EmbeddedStore, tmp_path: Path
) -> None:
    """`journeys report --department maintenance` once said "5,224 points, 100%" and "lost
    beyond the front desk: 73%" (own signals against every journey it touched), clipped the
    heatmap's legend (one stage column) and squeezed the score trend into 0-100."""
    fill(fresh_store, "maintenance-visits")
    html = tmp_path / "maintenance.html"
    data = write_report(fresh_store, html, ReportFilter(departments=("maintenance",)))
    assert {stage for _, stage in data.heatmap} == {"service"}, "one stage column"
    lines = summary_lines(data)
    top_lost = data.top_cells()[0][1]
    assert lines[2].startswith(f"  1. maintenance x service: {top_lost:,.0f} points, 100%")
    assert f"lost beyond the front desk: 100% of {top_lost:,.0f} points" in lines
    assert not any("promise_broken" in line for line in lines)

    page = tmp_path / "clip-check.html"
    page.write_text(html.read_text().replace("</body>", CLIP_CHECK + "</body>"))
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode()
    found = re.search(r'data-clipped="([^"]*)"', dom)
    assert found, "the check did not run"
    assert json.loads(unescape(found.group(1))) == []
    trend_axis = re.search(r"aria-label=\"Journey score trend, axis (\d+) to (\d+)\"", dom)
    assert trend_axis and int(trend_axis.group(1)) > 0, "the trend axis starts at 0"


def test_filters_narrow_departments_and_time(fresh_store: EmbeddedStore) -> None:
    fill(fresh_store, "maintenance-visits", customers=200)
    everything = load_report(fresh_store, ReportFilter())
    billing = load_report(fresh_store, ReportFilter(departments=("billing",)))
    assert {department for department, _ in billing.heatmap} == {"billing"}
    assert {department for department, _ in billing.rejections} <= {"billing"}
    assert 0 < billing.journeys < everything.journeys

    early = load_report(fresh_store, ReportFilter(until=datetime(2026, 3, 10, tzinfo=UTC)))
    assert 0 < early.journeys < everything.journeys
    assert all(day < datetime(2026, 3, 10, tzinfo=UTC).date() for day, *_ in early.trend)
    assert everything.top_cells()[0][0] == ("maintenance", "service")


def test_journeys_report_command_writes_the_file(tmp_path: Path) -> None:
    """The CLI end to end, in processes of its own (chdb: one data directory per process)."""
    env = {**os.environ, "JOURNEYS_DATA_DIR": str(tmp_path / "data")}
    write_scored_month(env, customers=100)
    journeys = str(Path(sys.executable).with_name("journeys"))
    output = tmp_path / "out" / "billing.html"
    done = subprocess.run(
        [journeys, "report", "-o", str(output), "--department", "billing",
         "--since", "2026-03-01T00:00:00+00:00"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Report written to" in done.stdout
    assert "rejected events by department" in done.stderr
    assert "filter: 2026-03-01 00:00 UTC to now; billing" in output.read_text()

    naive = subprocess.run(
        [journeys, "report", "--since", "2026-03-01T00:00:00"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert naive.returncode == 2 and "--since" in naive.stderr


pytestmark = pytest.mark.integration
