"""End-to-end runs: events into a topic, a contender consuming them, rows in ClickHouse.

Throughput: the topic is filled first, then the contender starts, so the producer does not
compete for the CPU being measured; the rate is taken from when rows were stored.
Latency: the contender runs and has caught up with a warm-up, then events are sent at a fixed
rate, each stamped with its send time; latency is stored time minus send time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from benchmarks import flame, stats
from benchmarks.broker import (
    CommitWatcher,
    create_topic,
    preload,
    send_at_rate,
    topic_sizes,
    wait_caught_up,
)
from benchmarks.contenders import (
    ContenderFactory,
    cpu_seconds,
    log_tail,
    running,
    thread_cpu,
)
from benchmarks.events import Message, relabel

WARM_UP_EVENTS = 200


class BenchmarkFailed(RuntimeError):
    """A run could not be measured; the message says which and shows the process's log."""


def run_json(argv: list[str], timeout: float, cwd: Path | None = None) -> dict[str, Any]:
    """Run a helper process that prints one JSON object; fail loudly with its stderr."""
    done = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=cwd, check=False)
    if done.returncode != 0:
        raise BenchmarkFailed(
            f"{' '.join(argv[:4])} exited {done.returncode}:\n{done.stderr.decode()[-3000:]}"
        )
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def _alive(process: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: process.poll() is None


def read_stored(chdb_dir: Path, database: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.stored", str(chdb_dir), database]
    return run_json(argv, timeout=600)


def _sample_later(pid: int, delay: float, seconds: float, output: Path) -> threading.Thread:
    """Sample the process with py-spy from `delay` s after its start (past Faust's boot)."""

    def sample() -> None:
        time.sleep(delay)
        spy = flame.record(pid, seconds, output)
        if spy is not None:
            spy.wait(seconds + 30)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread


def throughput(
    factory: ContenderFactory, bootstrap: str, messages: list[Message], workdir: Path,
    partitions: int, timeout: float, sample: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """`sample`: seconds of py-spy sampling of the contender, starting 8 s in (past Faust's
    start, inside the run: 200k events take about 25 s) (0: none)."""
    topic = create_topic(bootstrap, partitions)
    preload(bootstrap, topic, messages)
    contender = factory(bootstrap, topic, workdir)
    before = topic_sizes(bootstrap)
    started, progress = time.monotonic(), [(time.monotonic(), 0)]
    clock_offset = time.time() - time.monotonic()
    folded = workdir / "py-spy.txt"
    with running(contender) as process:
        sampler = _sample_later(process.pid, 8, sample, folded) if sample else None
        caught_up = wait_caught_up(
            bootstrap, topic, timeout, alive=_alive(process), progress=progress
        )
        if process.poll() is not None:
            raise BenchmarkFailed(f"{contender.name} died:\n{log_tail(contender)}")
        cpu, threads = cpu_seconds(process.pid), thread_cpu(process.pid)
        produced = _produced(before, topic_sizes(bootstrap), topic)
    elapsed = time.monotonic() - started
    if sampler is not None:
        sampler.join(sample + 40)
    stored = read_stored(contender.chdb_dir, contender.database)
    # Stored rows are the figure; a contender that stores nothing (the no-insert baseline)
    # is measured by its committed offsets instead.
    stored_at = stored["stored_at"]
    rate = (
        stats.sustained_rate(stored_at)
        if len(stored_at) >= 2
        else stats.progress_rate(progress, progress[-1][1])
    )
    through = _intake_to_commit(stored_at, progress, clock_offset)
    if contender.stored_by == "commit" and through is not None:
        # The worker's `_ingested_at` is its intake time; its events count as stored when
        # their offsets are committed (after ClickHouse acknowledged), which can be seconds
        # later under load: its rate is the lower of the two.
        rate = min(rate, through)
    return {
        "events": len(messages),
        "rows": stored["counts"],
        "caught_up": caught_up,
        "wall_seconds": elapsed,
        "cpu_seconds": cpu,
        "cpu_by_thread": threads,
        "produced": produced,
        "main_thread": flame.breakdown(folded.read_text()) if folded.exists() else {},
        "rate": rate,
        "committed_rate": stats.progress_rate(progress, progress[-1][1]),
        "intake_to_commit_rate": through,
    }


def _intake_to_commit(
    stored_at: list[float], progress: list[tuple[float, int]], clock_offset: float
) -> float | None:
    """Events per second from the first event taken in to the moment all were committed."""
    if len(stored_at) < 2 or not progress or progress[-1][1] <= 0:
        return None
    total = progress[-1][1]
    done = next(at for at, committed in progress if committed >= total) + clock_offset
    return total / (done - min(stored_at)) if done > min(stored_at) else None


def _produced(before: dict[str, int], after: dict[str, int], source: str) -> dict[str, int]:
    """Messages the contender wrote to Kafka during the run, per topic (not its input)."""
    grown = {t: n - before.get(t, 0) for t, n in after.items() if t != source}
    return {t: n for t, n in sorted(grown.items()) if n > 0 and not t.startswith("__")}


def latency(
    factory: ContenderFactory, bootstrap: str, messages: list[Message], warm_up: list[Message],
    workdir: Path, partitions: int, rate: float, drain: float,
) -> dict[str, Any]:  # fmt: skip
    topic = create_topic(bootstrap, partitions)
    contender = factory(bootstrap, topic, workdir)
    watcher = CommitWatcher(bootstrap, topic)
    with running(contender) as process:
        preload(bootstrap, topic, relabel(warm_up, "warm-"))
        if not wait_caught_up(bootstrap, topic, 180, settle=1.0, alive=_alive(process)):
            raise BenchmarkFailed(f"{contender.name} did not start:\n{log_tail(contender)}")
        watcher.start()
        sent = send_at_rate(bootstrap, topic, messages, rate)
        caught_up = wait_caught_up(
            bootstrap, topic, drain, settle=1.0, alive=_alive(process), stall=drain
        )
        watcher.stop()
        if process.poll() is not None:
            raise BenchmarkFailed(f"{contender.name} died:\n{log_tail(contender)}")
    if contender.stored_by == "commit":
        stored_at = stats.commit_times(sent.positions, watcher.polls)
    else:
        stored = read_stored(contender.chdb_dir, contender.database)
        stored_at = {key: pair[1] for key, pair in stored["stamped"].items()}
    return _latency_summary(sent.at, stored_at, caught_up) | {"stored_by": contender.stored_by}


def _latency_summary(sent: dict[str, float], stored: dict[str, float], caught_up: bool) -> dict:
    measured = stats.latencies(sent, stored)
    spread = stats.spread(measured)
    missing = sum(1 for value in measured if value == stats.MISSING)
    return {"sent": len(sent), "missing": missing, "caught_up": caught_up} | spread.as_dict()


def raw_throughput(bootstrap: str, messages: list[Message], partitions: int) -> dict[str, Any]:
    topic = create_topic(bootstrap, partitions)
    count = preload(bootstrap, topic, messages)
    argv = [sys.executable, "-m", "benchmarks.raw_consumer", bootstrap, topic,
            str(partitions), str(count), "600"]  # fmt: skip
    result = run_json(argv, timeout=660)
    return {"events": count, "decoded": result["decoded"],
            "rate": stats.sustained_rate(result["stored_at"])}  # fmt: skip


def raw_latency(
    bootstrap: str, messages: list[Message], workdir: Path, partitions: int, rate: float
) -> dict[str, Any]:
    topic = create_topic(bootstrap, partitions)
    ready = workdir / f"raw-ready-{topic}"
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "benchmarks.raw_consumer", bootstrap, topic, str(partitions),
            str(len(messages)), str(len(messages) / rate + 120), str(ready)]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        sent = send_at_rate(bootstrap, topic, messages, rate)
        out, err = process.communicate(timeout=len(messages) / rate + 180)
    if process.returncode != 0:
        raise BenchmarkFailed(f"raw consumer exited {process.returncode}:\n{err.decode()[-3000:]}")
    values = orjson.loads(out)["latencies"]
    missing = max(len(sent.at) - len(values), 0)
    spread = stats.spread(values + [stats.MISSING] * missing)
    return {"sent": len(sent.at), "missing": missing, "caught_up": True, "stored_by": "decode"} | (
        spread.as_dict()
    )


def stop_under_load(
    factory: ContenderFactory, bootstrap: str, messages: list[Message], warm_up: list[Message],
    workdir: Path, partitions: int, rate: float, after: float = 5.0,
) -> dict[str, Any]:  # fmt: skip
    """SIGTERM the contender `after` seconds into input arriving at `rate`: its exit code
    and the seconds from the signal to the process's end (a supervisor's grace is ~10 s)."""
    topic = create_topic(bootstrap, partitions)
    contender = factory(bootstrap, topic, workdir)
    with running(contender) as process:
        preload(bootstrap, topic, relabel(warm_up, "warm-"))
        if not wait_caught_up(bootstrap, topic, 180, settle=1.0, alive=_alive(process)):
            raise BenchmarkFailed(f"{contender.name} did not start:\n{log_tail(contender)}")
        sender = threading.Thread(target=send_at_rate, args=(bootstrap, topic, messages, rate))
        sender.start()
        time.sleep(after)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - signalled
        sender.join()
    return {"rate": rate, "after": after, "exit_code": code, "seconds": seconds,
            "log": log_tail(contender, 5)}  # fmt: skip
