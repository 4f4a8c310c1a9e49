"""A service a test runs as a child process (worker, collector, ClickHouse endpoint): its
output in one log file, stopped with SIGTERM as a supervisor stops it, killed only when it
does not end in time, and the tail of its log quoted when something goes wrong."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class ChildProcess:
    """Start with `spawn`; `process` is None until then."""

    process: subprocess.Popen[bytes] | None = None
    log: Path

    def spawn(
        self, command: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `command`, appending its stdout and stderr to the log."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                list(command), env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )
        return self.process

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM unless it has ended; the exit code (0 if never started, -9 if it had to be
        killed after `timeout` seconds)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        return self.terminate(timeout)[0]

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM now; the exit code and the seconds until the process ended (SIGKILL and
        -9 after `timeout` seconds)."""
        assert self.process is not None, "never started"
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        return code, time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL: no checkpoint, no commit, no goodbye."""
        assert self.process is not None, "never started"
        self.process.kill()
        self.process.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
