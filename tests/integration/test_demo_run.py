"""`journeys demo` end to end at a reduced size: broker, worker, simulated company, report.

The demo runs as a child process (as `make demo` does) against the session's real broker,
with its own data directory, and plants billing's renewal invoices rather than the demo's
default, so a report that merely repeated the default could not pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.chromium import assert_not_blank, chromium

pytestmark = pytest.mark.integration


def test_demo_finds_the_planted_breakdown_first(bootstrap_servers: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "JOURNEYS_DATA_DIR": str(tmp_path / "data"),
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
    }
    report = tmp_path / "report.html"
    command = [
        sys.executable, "-c", "from pipeline.cli import main; main()", "demo",
        "--customers", "300", "--breakdown", "billing-renewal", "-o", str(report),
        "--timeout", "180",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    elapsed = time.monotonic() - started
    log = tmp_path / "data" / "demo-worker.log"
    worker_log = log.read_text()[-3000:] if log.exists() else "(no worker log)"
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{worker_log}"

    found = done.stdout.split("what the pipeline found", 1)[1]
    first = re.search(r"^\s*1\. (\w+) x (\w+):", found, flags=re.MULTILINE)
    assert first and first.groups() == ("billing", "renewal"), found
    assert "planted: billing corrects invoices at renewal (billing x renewal)" in done.stdout
    assert re.search(r"lost beyond the front desk: \d+%", found)
    assert re.search(r"word-of-mouth balance: [+-][\d,]+", found)
    assert re.search(r"rejected events by department: .*delivery \d+", found)
    assert "journeys kafka stop" in done.stdout
    assert "worker stopped (exit 0)" in done.stderr  # a clean stop, no signal death

    html = report.read_text()
    assert "Most experience is lost in <b>billing × renewal</b>" in html
    first_row = re.search(r"<td class='num'>1</td><td>(\w+) × (\w+)</td>", html)
    assert first_row and first_row.groups() == ("billing", "renewal")
    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout.decode()
    for element_id in ("heatmap", "trend", "word-of-mouth"):
        assert f'id="{element_id}"' in dom, element_id
    png = tmp_path / "demo.png"
    chromium(tmp_path, f"--screenshot={png}", "--window-size=900,1400", report.as_uri())
    assert_not_blank(png)
    print(f"demo at 300 customers took {elapsed:.0f}s")
