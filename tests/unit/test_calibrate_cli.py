"""`journeys calibrate` stops on SIGTERM as on Ctrl-C: exit 0, nothing written, handler restored."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import calibrate as command
from pipeline.cli import cli


def test_sigterm_while_reading_stops_with_exit_0_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def terminated(*_args: object) -> list[object]:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr(command, "_read_answers", terminated)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "proposed.toml"
    result = CliRunner().invoke(cli, ["calibrate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "interrupted: no model written" in result.output
    assert not out.exists()
    assert signal.getsignal(signal.SIGTERM) is before
