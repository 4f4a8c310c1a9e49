"""`journeys simulate -o -`: JSON Lines on stdout, the planted summary on stderr."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from pipeline.cli.simulate import simulate_command


def test_writes_one_message_per_line_and_summarises_what_was_planted() -> None:
    runner = CliRunner()
    args = ["--customers", "30", "--days", "10", "--seed", "4", "--malformed", "0.05"]
    args += ["--start", "2026-03-01T00:00:00+00:00", "-o", "-"]
    result = runner.invoke(simulate_command, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    assert len(parsed) >= 0.9 * len(lines) > 100
    assert all(p["occurred_at"] >= "2026-03-01" for p in parsed if "occurred_at" in p)
    assert f"in {len(lines):,} messages" in result.stderr
    assert "planted: maintenance breaks visit promises (maintenance x service)" in result.stderr

    again = runner.invoke(simulate_command, args)
    assert again.stdout == result.stdout


def test_bad_options_name_the_option() -> None:
    runner = CliRunner()
    result = runner.invoke(simulate_command, ["--late", "2", "-o", "-"])
    assert result.exit_code == 1
    assert "--late: expected a share between 0 and 1, got 2.0" in result.stderr
    result = runner.invoke(simulate_command, ["--breakdown", "gremlins", "-o", "-"])
    assert result.exit_code == 1 and "--breakdown: unknown 'gremlins'" in result.stderr
    result = runner.invoke(simulate_command, ["--rate", "0", "-o", "-"])
    assert result.exit_code == 1 and "rate" in result.stderr
