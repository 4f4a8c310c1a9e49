"""The HTTP collector against `journeys emit`, on the same input and the same local broker.

The input is the simulator's traffic (about 1% malformed, as departments send it), as JSON
Lines. `journeys emit FILE` sends it with kafka-python (the command's wall time, start-up
included). `journeys collect` gets it as POSTs of 500 events from four keep-alive
connections on loopback, as four department systems would send; a request's latency is
from its first byte sent to its answer's last byte read, and the answer comes only after
Kafka acknowledged (acks=all). The rate is every event sent over the wall time from the
first request to the last answer. The loader runs in this process: on two cores it shares
them with the collector and the broker, as a real sender on the same host would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.broker import create_topic, end_offsets
from benchmarks.contenders import cpu_seconds
from benchmarks.endtoend import BenchmarkFailed
from benchmarks.events import Message
from benchmarks.stats import percentile
from pipeline.kafka.local import free_port

JOURNEYS = str(Path(sys.executable).with_name("journeys"))
BATCH = 500
CONNECTIONS = 4
PARTITIONS = 4
TOKEN = "bench-token"


def collector(
    bootstrap: str, messages: list[Message], workdir: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    values = [value for _, value in messages]
    source = workdir / "collector-input.jsonl"
    source.write_bytes(b"\n".join(values) + b"\n")
    say(f"collector: journeys emit, {len(values):,} events (the baseline)")
    emitted = emit(bootstrap, source, workdir)
    say(f"collector: journeys collect, {len(values):,} events in POSTs of {BATCH}")
    collected = collect(bootstrap, values, workdir)
    return collected | {"emit": emitted}


def emit(bootstrap: str, source: Path, workdir: Path) -> dict[str, Any]:
    topic = create_topic(bootstrap, PARTITIONS, prefix="bench-emit")
    env = os.environ | {"JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                        "JOURNEYS_TOPIC_TOUCHPOINTS": topic}  # fmt: skip
    started = time.monotonic()
    done = subprocess.run([JOURNEYS, "emit", "--json", str(source)], env=env,
                          capture_output=True, timeout=1800, check=False)  # fmt: skip
    seconds = time.monotonic() - started
    if done.returncode not in (0, 1):  # 1: some lines rejected, the rest sent
        raise BenchmarkFailed(f"journeys emit exited {done.returncode}: {done.stderr[-2000:]!r}")
    report = json.loads(done.stdout)
    events = report["valid"] + report["rejected"]
    return {"events": events, "sent": report["sent"], "rejected": report["rejected"],
            "seconds": seconds, "rate": events / seconds,
            "on_topic": sum(end_offsets(bootstrap, topic).values())}  # fmt: skip


def collect(bootstrap: str, values: list[bytes], workdir: Path) -> dict[str, Any]:
    topic = create_topic(bootstrap, PARTITIONS, prefix="bench-collect")
    port = free_port()
    env = os.environ | {
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "JOURNEYS_TOPIC_TOUCHPOINTS": topic,
        "JOURNEYS_TOPIC_DEAD_LETTERS": f"{topic}.dlq",
        "JOURNEYS_COLLECTOR_TOKENS": json.dumps({TOKEN: ["*"]}),
        "JOURNEYS_COLLECTOR_PORT": str(port),
        # Measured here: the collector's speed, not the per-token limit.
        "JOURNEYS_COLLECTOR_RATE_EVENTS_PER_SECOND": "1e9",
        "JOURNEYS_COLLECTOR_RATE_BURST_EVENTS": str(10**9),
    }
    log = workdir / "collector.log"
    with log.open("wb") as out:
        process = subprocess.Popen([JOURNEYS, "collect"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait_healthy(port, process, log)
        bodies = [b"\n".join(values[i : i + BATCH]) for i in range(0, len(values), BATCH)]
        cpu_before = cpu_seconds(process.pid)
        found = asyncio.run(_load(port, bodies))
        cpu = cpu_seconds(process.pid) - cpu_before
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    latencies = found.pop("latencies")
    return found | {
        "events": len(values), "batch": BATCH, "connections": CONNECTIONS,
        "rate": len(values) / found["seconds"],
        "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
        "max": max(latencies), "requests": len(latencies),
        "cpu_us_per_event": cpu / len(values) * 1e6,
        "on_topic": sum(end_offsets(bootstrap, topic).values()), "exit_code": code,
    }  # fmt: skip


def _wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkFailed(f"journeys collect exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise BenchmarkFailed(f"journeys collect never answered: {log.read_text()[-2000:]}")


def _request(body: bytes) -> bytes:
    return (b"POST /v1/touchpoints HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer "
            + TOKEN.encode() + b"\r\nContent-Type: application/x-ndjson\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip


async def _load(port: int, bodies: list[bytes]) -> dict[str, Any]:
    """Send every body once over CONNECTIONS keep-alive connections; a minimal HTTP/1.1
    client, so the loader takes as little of the two cores as it can."""
    queue = list(reversed([_request(body) for body in bodies]))
    latencies: list[float] = []
    answers = {"accepted": 0, "rejected": 0}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                request = queue.pop()
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                answer = json.loads(await reader.readexactly(length))
                latencies.append(time.perf_counter() - sent)
                if not head.startswith((b"HTTP/1.1 202", b"HTTP/1.1 400")):
                    raise BenchmarkFailed(f"the collector answered {head[:40]!r}: {answer}")
                answers["accepted"] += answer["accepted"]
                answers["rejected"] += len(answer["rejected"])
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    seconds = time.perf_counter() - started
    return answers | {"seconds": seconds, "latencies": latencies}
