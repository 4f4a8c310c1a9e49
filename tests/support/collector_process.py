"""`journeys collect` as a subprocess with settings of its own, for end-to-end tests: started
and watched through its /healthz, stopped with SIGTERM, its output kept in a log file."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.kafka.local import free_port
from tests.support.child_process import ChildProcess
from tests.support.worker_process import JOURNEYS

TOKENS = {"billing-secret-1": ["billing"], "ops-secret-2": ["*"]}


def collector_env(bootstrap: str, topic: str, **settings: str) -> dict[str, str]:
    """Settings of a collector on its own port, its topics named after `topic`."""
    return (
        os.environ
        | {
            "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "JOURNEYS_TOPIC_TOUCHPOINTS": topic,
            "JOURNEYS_TOPIC_DEAD_LETTERS": f"{topic}.dlq",
            "JOURNEYS_COLLECTOR_TOKENS": json.dumps(TOKENS),
            "JOURNEYS_COLLECTOR_PORT": str(free_port()),
            "JOURNEYS_KAFKA_CONNECT_TIMEOUT_SECONDS": "5",
        }
        | {f"JOURNEYS_{name.upper()}": value for name, value in settings.items()}
    )


class CollectorProcess(ChildProcess):
    """One `journeys collect`; stopped with `terminate` (SIGTERM, then its exit code and how
    long it took), killed at the end of a `with` block if still running."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.env, self.log, self.args = env, log, args
        self.port = int(env["JOURNEYS_COLLECTOR_PORT"])

    def start(self, timeout: float = 30) -> CollectorProcess:
        process = self.spawn([JOURNEYS, "collect", *self.args], self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the collector exited:\n{self.tail()}"
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the collector never answered /healthz:\n{self.tail()}")

    def __enter__(self) -> CollectorProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        if self.running():
            self.kill()

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as reply:
            return reply.status, reply.read()

    def post(
        self, body: bytes, token: str | None = "billing-secret-1",
        content_type: str = "application/x-ndjson", timeout: float = 30,
    ) -> tuple[int, dict[str, str], Any]:  # fmt: skip
        """POST /v1/touchpoints: status, headers and the answer's JSON."""
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/touchpoints",
                                         data=body, headers=headers, method="POST")  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply.status, dict(reply.headers), json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())
