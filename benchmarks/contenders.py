"""The consumers under test, each run as its own process with its own data directory.

- `worker`: the product's Faust worker (`faust -A pipeline.app worker`), configured the way
  an operator would, through JOURNEYS_* variables.
- `naive`: the one-event-at-a-time Faust agent of `benchmarks.naive_worker`.

Each run gets unique topic names and a unique Faust app id, so no run recovers another's
table changelog or commits into another's consumer group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.broker import REPO
from pipeline.kafka.local import free_port


@dataclass
class Contender:
    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    database: str = "journeys"
    # How "stored" is observed for latency: "table" reads `_ingested_at` (set by the insert
    # itself), "commit" the moment the offsets covering the event were committed, for a
    # consumer that commits only after ClickHouse acknowledged (its `_ingested_at` is intake).
    stored_by: str = "table"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def chdb_dir(self) -> Path:
        return self.workdir / "clickhouse"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"


ContenderFactory = Callable[[str, str, Path], Contender]


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOURNEYS_", "BENCH_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def worker(bootstrap: str, topic: str, workdir: Path, profile: bool = False) -> Contender:
    """The product's worker; with `profile`, under cProfile (main thread: the event loop,
    where Faust, the engine and the row building run) writing `worker.prof` on exit."""
    suffix = uuid.uuid4().hex[:6]
    env = _base_env() | {
        "JOURNEYS_DATA_DIR": str(workdir),
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "JOURNEYS_TOPIC_TOUCHPOINTS": topic,
        "JOURNEYS_TOPIC_DEAD_LETTERS": f"{topic}.dlq",
        "JOURNEYS_TOPIC_SCORES": f"{topic}.scores",
        "JOURNEYS_TOPIC_ALERTS": f"{topic}.alerts",
        "JOURNEYS_TOPIC_ROUTED": f"{topic}.routed",
        "JOURNEYS_WORKER_ID": f"bench-worker-{suffix}",
        "JOURNEYS_WORKER_WEB_PORT": str(free_port()),
    }
    argv = [sys.executable, "-m", "faust", "-A", "pipeline.app", "worker", "-l", "warn"]
    if profile:
        argv[1:1] = ["-m", "cProfile", "-o", str(workdir / "worker.prof")]
    return Contender("worker", argv, env, workdir, stored_by="commit")


def profiled_worker(bootstrap: str, topic: str, workdir: Path) -> Contender:
    return worker(bootstrap, topic, workdir, profile=True)


def _baseline(name: str, module: str, bootstrap: str, topic: str, workdir: Path,
              **extra: str) -> Contender:  # fmt: skip
    """A baseline Faust app of this package, configured by BENCH_* variables."""
    env = (
        _base_env()
        | extra
        | {
            "BENCH_BOOTSTRAP": bootstrap,
            "BENCH_TOPIC": topic,
            "BENCH_WORKDIR": str(workdir),
            "BENCH_APP_ID": f"bench-{name}-{uuid.uuid4().hex[:6]}",
        }
    )
    argv = [sys.executable, "-m", "faust", "-A", module, "worker", "-l", "warn", "--without-web"]
    return Contender(name, argv, env, workdir)


def naive(bootstrap: str, topic: str, workdir: Path, insert: bool = True) -> Contender:
    name = "naive" if insert else "naive-no-insert"
    return _baseline(name, "benchmarks.naive_worker", bootstrap, topic, workdir,
                     BENCH_NAIVE_INSERT="1" if insert else "0")  # fmt: skip


def naive_no_insert(bootstrap: str, topic: str, workdir: Path) -> Contender:
    return naive(bootstrap, topic, workdir, insert=False)


def faust_floor(bootstrap: str, topic: str, workdir: Path) -> Contender:
    return _baseline("faust-floor", "benchmarks.faust_floor", bootstrap, topic, workdir)


CONTENDERS: dict[str, ContenderFactory] = {
    "worker": worker,
    "naive": naive,
    "naive-no-insert": naive_no_insert,
    "faust-floor": faust_floor,
}


@contextlib.contextmanager
def running(contender: Contender) -> Iterator[subprocess.Popen[bytes]]:
    """The contender's process for the duration of the block, stopped cleanly after."""
    contender.workdir.mkdir(parents=True, exist_ok=True)
    with open(contender.log, "ab") as log:
        process = subprocess.Popen(
            contender.argv, env=contender.env, cwd=contender.workdir, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes], grace: float = 60.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc), all threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name: Python's main thread (the process name), the asyncio
    executor threads, and the ClickHouse engine's own pools inside chdb."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        found[name] = found.get(name, 0.0) + seconds
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def log_tail(contender: Contender, lines: int = 15) -> str:
    if not contender.log.exists():
        return ""
    return "\n".join(contender.log.read_text(errors="replace").splitlines()[-lines:])
