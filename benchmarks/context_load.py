"""Open-loop load on the worker's context API: `python -m benchmarks.context_load PORT TOKEN
RATE SECONDS PATHS_FILE` prints JSON (requests, statuses, rate, latencies' percentiles).

Request i is due at start + i / RATE whatever the answers before it did (open loop), and
its latency is from that moment to its answer read, so a slow answer delays the requests
queued behind it and shows in their latencies (no coordinated omission). Requests go over
a pool of keep-alive connections with a minimal HTTP/1.1 client, in a process of its own,
so the loader takes little of the two cores and none of the worker's event loop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from benchmarks.stats import percentile

CONNECTIONS = 16


def request(path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()  # fmt: skip


async def load(port: int, token: str, rate: float, seconds: float, paths: list[str]) -> dict:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def one(path: str, due: float) -> None:
        reader, writer = await pool.get()
        try:
            writer.write(request(path, token))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        finally:
            pool.put_nowait((reader, writer))
        latencies.append(time.perf_counter() - due)
        status = head.split(b" ", 2)[1].decode()
        statuses[status] = statuses.get(status, 0) + 1

    count = int(rate * seconds)
    started = time.perf_counter()
    tasks = []
    for number in range(count):
        due = started + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(paths[number % len(paths)], due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {
        "requests": count, "statuses": statuses, "seconds": elapsed, "rate": count / elapsed,
        "offered_rate": rate, "connections": CONNECTIONS,
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99), "max": max(latencies),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    port, token, rate, seconds, paths_file = argv
    paths = Path(paths_file).read_text().split()
    found = asyncio.run(load(int(port), token, float(rate), float(seconds), paths))
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
