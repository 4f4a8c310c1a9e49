"""The report over real rows: a simulated company scored by the pure engine, stored in chdb,
read back through the Store, rendered, and opened in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from pipeline.journey import load_score_model
from pipeline.report import ReportFilter, load_report, summary_lines, write_report
from pipeline.simulate import SimulationConfig, parse_breakdowns, simulate
from pipeline.simulate.offline import score_offline
from pipeline.store.embedded import EmbeddedStore

START = datetime(2026, 3, 1, tzinfo=UTC)
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)  # fmt: skip


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run Debian's chromium headless with a new, empty profile."""
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed (apt-get install chromium; .ci/run does it)"
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


def assert_not_blank(png: Path) -> None:
    image = Image.open(png).convert("RGB")
    pixels = list(image.getdata())
    ink = sum(1 for r, g, b in pixels if min(r, g, b) < 200)
    assert len(set(pixels)) > 50, "the screenshot has almost no distinct colours"
    assert ink > 0.03 * len(pixels), f"only {ink} of {len(pixels)} pixels are not near-white"


def fill(store: EmbeddedStore, preset: str, customers: int = 400) -> None:
    config = SimulationConfig(
        customers=customers, start=START, seed=3, breakdowns=parse_breakdowns([preset])
    )
    deliveries, _ = simulate(config)
    score_offline(deliveries, load_score_model(), config.end).write(store)


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
    prepare = (
        "from datetime import UTC, datetime\n"
        "from pipeline.journey import load_score_model\n"
        "from pipeline.settings import load_settings\n"
        "from pipeline.simulate import SimulationConfig, simulate\n"
        "from pipeline.simulate.offline import score_offline\n"
        "from pipeline.store import apply_migrations, get_store\n"
        "store = get_store(load_settings())\n"
        "apply_migrations(store)\n"
        "config = SimulationConfig(customers=100, start=datetime(2026, 3, 1, tzinfo=UTC))\n"
        "score_offline(simulate(config)[0], load_score_model(), config.end).write(store)\n"
    )
    subprocess.run([sys.executable, "-c", prepare], env=env, check=True, timeout=300)
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
