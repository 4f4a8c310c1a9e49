"""Start and stop the test ClickHouse HTTP server (tests/support/clickhouse_http.py).

The server runs in a process of its own: chdb allows one process per data directory, and
the tests' own process already runs chdb for the embedded store. A server that does not
answer in time, or does not exit cleanly, raises: the tests that need it fail, never skip.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.child_process import ChildProcess

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ClickHouseProcess(ChildProcess):
    home: Path
    user: str = "journeys_test"
    password: str = "s3cret 'quoted'"  # not the default: the client must send it
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    cluster: str | None = None  # the one node of this cluster (clickhouse_cluster.py)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.home / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings_env(self, database: str) -> dict[str, str]:
        """The JOURNEYS_ variables that put a command in server mode against this server."""
        return {
            "JOURNEYS_CLICKHOUSE_MODE": "server",
            "JOURNEYS_CLICKHOUSE_URL": self.url,
            "JOURNEYS_CLICKHOUSE_USER": self.user,
            "JOURNEYS_CLICKHOUSE_PASSWORD": self.password,
            "JOURNEYS_CLICKHOUSE_DATABASE": database,
        }

    def start(self, timeout: float = 60) -> None:
        """Start and wait until /ping answers; on the port of an earlier start, if any."""
        port_file = self.home / "port"
        port_file.unlink(missing_ok=True)
        process = self.spawn(
            [sys.executable, "-m", "tests.support.clickhouse_http",
             "--data", str(self.home / "data"), "--port-file", str(port_file),
             "--port", str(self.port), "--user", self.user, "--password", self.password,
             *(("--cluster", self.cluster) if self.cluster else ())],
            cwd=REPO,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the ClickHouse test server exited at start:\n{self.tail()}")
            if port_file.exists() and self._answers(int(port_file.read_text())):
                self.port = int(port_file.read_text())
                return
            time.sleep(0.1)
        process.kill()
        raise RuntimeError(
            f"the ClickHouse test server did not answer in {timeout} s:\n{self.tail()}"
        )

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
                return bool(reply.status == 200 and reply.read() == b"Ok.\n")
        except OSError:
            return False
