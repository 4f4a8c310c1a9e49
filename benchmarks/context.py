"""The worker's context API under load (`python -m benchmarks --only context`).

One worker (embedded, the product's settings but for its context tokens) reads a topic of
4 partitions. First a preload of the simulator's traffic is stored (the journeys asked
about); then, for the measured seconds, the simulator's next events arrive at a fixed rate
(1,000 events/s) while a loader in a process of its own asks the context API at a fixed
rate (`benchmarks.context_load`, open loop): 80% of the requests for one journey
(`/v1/journeys/{id}`), 20% for a customer's open journeys, ids drawn from the preload.
The figures: the requests' rate and latency percentiles, their statuses, whether the
worker kept up with the events meanwhile (caught up within seconds of the last one), the
worker's CPU seconds over the loaded span (events and requests together) and the machine's
load average after it (the figures mean little on a machine busy with other work).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from benchmarks.broker import create_topic, preload, send_at_rate, wait_caught_up
from benchmarks.contenders import cpu_seconds, log_tail, running, worker
from benchmarks.endtoend import BenchmarkFailed, run_json
from benchmarks.events import Message, decoded

PARTITIONS = 4
TOKEN = "bench-context-reader"


def context(
    bootstrap: str, messages: list[Message], preloaded: int, workdir: Path, *,
    events_per_second: float, requests_per_second: float, seconds: float,
) -> dict[str, Any]:  # fmt: skip
    topic = create_topic(bootstrap, PARTITIONS, prefix="bench-context")
    contender = worker(bootstrap, topic, workdir / "context")
    contender.env["JOURNEYS_CONTEXT_TOKENS"] = json.dumps({TOKEN: ["*"]})
    paths = workdir / "context-paths.txt"
    paths.write_text("\n".join(_paths(messages[:preloaded])))
    during = messages[preloaded : preloaded + int(events_per_second * seconds)]
    with running(contender) as process:
        preload(bootstrap, topic, messages[:preloaded])
        if not wait_caught_up(
            bootstrap, topic, 300, settle=1.0, alive=lambda: process.poll() is None
        ):
            raise BenchmarkFailed(f"the worker did not store the preload:\n{log_tail(contender)}")
        sender = threading.Thread(target=send_at_rate, args=(bootstrap, topic, during,
                                                             events_per_second))  # fmt: skip
        sender.start()
        cpu_before = cpu_seconds(process.pid)
        port = contender.env["JOURNEYS_WORKER_WEB_PORT"]
        found = run_json(
            [sys.executable, "-m", "benchmarks.context_load", port, TOKEN,
             str(requests_per_second), str(seconds), str(paths)], timeout=seconds * 4 + 60,
        )  # fmt: skip
        cpu = cpu_seconds(process.pid) - cpu_before
        sender.join()
        kept_up = wait_caught_up(bootstrap, topic, 30, settle=1.0,
                                 alive=lambda: process.poll() is None)  # fmt: skip
        if process.poll() is not None:
            raise BenchmarkFailed(f"the worker died:\n{log_tail(contender)}")
    return found | {"events_per_second": events_per_second, "events_sent": len(during),
                    "preloaded": preloaded, "kept_up": kept_up, "worker_cpu_seconds": cpu,
                    "load_average": list(os.getloadavg())}  # fmt: skip


def _paths(messages: list[Message], count: int = 2_000, seed: int = 20) -> list[str]:
    """Request paths for journeys and customers of these messages, 4 to 1."""
    events = [e for _, value in messages if (e := decoded(value)) is not None]
    journeys = sorted({e["journey_id"] for e in events if isinstance(e.get("journey_id"), str)})
    customers = sorted({e["customer_id"] for e in events if isinstance(e.get("customer_id"), str)})
    if not journeys or not customers:
        raise BenchmarkFailed("the preload holds no journey_id or customer_id to ask about")
    pick = random.Random(seed)
    quote = urllib.parse.quote
    return [
        f"/v1/customers/{quote(pick.choice(customers), safe='')}/journeys?open=true"
        if n % 5 == 4
        else f"/v1/journeys/{quote(pick.choice(journeys), safe='')}"
        for n in range(count)
    ]
