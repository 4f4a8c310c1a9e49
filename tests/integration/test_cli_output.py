"""Output piped into grep, a log file or CI: whole lines, nothing cut to 80 columns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pipeline.settings import Settings

JOURNEYS = str(Path(sys.executable).with_name("journeys"))


def piped(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
    env |= {"JOURNEYS_DATA_DIR": str(data_dir), "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [JOURNEYS, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_config_piped_prints_one_whole_line_per_variable(tmp_path: Path) -> None:
    done = piped("config", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert len(rows) == len(Settings.model_fields)
    assert all(len(row) == 3 for row in rows)
    found = [row for row in rows if "BOOTSTRAP" in row[0]]
    assert found == [
        [
            "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS",
            "127.0.0.1:9092",
            Settings.model_fields["kafka_bootstrap_servers"].description,
        ]
    ]


def test_messages_are_not_wrapped_when_piped(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    done = piped("simulate", "--customers=5", "--days=2", "-o", str(events), data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = [line for line in done.stderr.splitlines() if not line.startswith("sending")]
    # Each summary item is one line however long; a wrapped one leaves a line without "· ".
    assert summary and all(line.startswith("· ") for line in summary), summary
    assert any(re.fullmatch(r"· seed 7: .* to .* UTC", line) for line in summary)
    assert max(len(line) for line in summary) > 80
