"""The suite: sizes, the order of the sections, and where each section runs.

Every section that opens chdb runs in a process of its own (one data directory per
process); the end-to-end sections share one local broker started for the run. Each section
returns plain JSON-able figures; `report` turns them into the table and docs/benchmarks.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import collector, contenders, endtoend, isolation, scale
from benchmarks import context as context_api
from benchmarks.broker import local_broker
from benchmarks.events import simulated

SECTIONS = (
    "micro", "throughput", "latency", "scale", "collector", "context", "isolation", "rescore",
    "queries", "memory",
)  # fmt: skip
PARTITIONS = 4


@dataclass(frozen=True)
class Sizes:
    throughput_events: int  # worker and raw consumer
    naive_events: int  # naive agent with one insert per event (tens of events per second)
    naive_no_insert_events: int
    naive_seconds: float  # the naive runs are cut off after this long and measured so far
    latency_seconds: float  # per fixed-rate run
    latency_rates: tuple[int, ...]
    micro_events: int
    touchpoints: int
    journeys: int
    query_repeats: int
    memory_journeys: int
    baselines_everywhere: bool = True  # False: naive latency runs and no-insert run skipped
    sample_seconds: float = 12.0  # py-spy sampling of the worker's throughput run (0: none)
    scale_events: int = 300_000  # per run of one, two and three worker processes
    collector_events: int = 200_000  # through journeys collect, and journeys emit
    context_seconds: float = 30.0  # context API under load, while 1,000 events/s arrive
    context_preload: int = 20_000  # events stored first: the journeys asked about
    # Per worker run, alone and beside a busy alert delivery: several seconds of steady state
    # between the window's ends (`benchmarks.isolation.WINDOW`) at ~15,000 events/s.
    isolation_events: int = 100_000
    rescore_events: int = 1_000_000  # stored touchpoints scored again by journeys rescore
    # The worker and Faust's floor alternate this many times; each is reported by its median
    # run (this shared machine's speed drifts by a fifth and more within minutes).
    floor_rounds: int = 3

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes(
    throughput_events=200_000, naive_events=5_000, naive_no_insert_events=30_000,
    naive_seconds=60, latency_seconds=30, latency_rates=(1000, 5000), micro_events=50_000,
    touchpoints=10_000_000, journeys=1_000_000, query_repeats=20, memory_journeys=1_000_000,
)  # fmt: skip
QUICK = Sizes(
    throughput_events=20_000, naive_events=500, naive_no_insert_events=3_000,
    naive_seconds=15, latency_seconds=5, latency_rates=(1000, 5000), micro_events=5_000,
    touchpoints=200_000, journeys=20_000, query_repeats=5, memory_journeys=20_000,
    baselines_everywhere=False, sample_seconds=0.0, scale_events=60_000, floor_rounds=1,
    collector_events=20_000, context_seconds=10.0, context_preload=5_000, rescore_events=100_000,
    isolation_events=10_000,
)  # fmt: skip


def _python(module: str, *args: object, timeout: float = 3600) -> dict[str, Any]:
    return endtoend.run_json([sys.executable, "-m", module, *map(str, args)], timeout=timeout)


def micro(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"hot path: {sizes.micro_events:,} simulated events through validator, engine, rows")
    return _python("benchmarks.micro", sizes.micro_events)


def queries(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"dashboards: {sizes.touchpoints:,} touchpoints, {sizes.journeys:,} journeys in chdb")
    directory = workdir / "queries"
    return _python("benchmarks.queries", directory, sizes.touchpoints, sizes.journeys,
                   sizes.query_repeats)  # fmt: skip


def memory(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    # RSS does not depend on CPU contention: both stores are measured at once, to save time.
    say(f"memory: {sizes.memory_journeys:,} active journeys, RocksDB and memory table stores")
    with ThreadPoolExecutor(2) as pool:
        futures = {store: pool.submit(_memory, sizes, workdir, store)
                   for store in ("rocksdb", "memory")}  # fmt: skip
        return {store: future.result() for store, future in futures.items()}


def _memory(sizes: Sizes, workdir: Path, store: str) -> dict[str, Any]:
    directory = workdir / f"memory-{store}"
    directory.mkdir(parents=True, exist_ok=True)
    return _python("benchmarks.memory", sizes.memory_journeys, store, directory)


def streaming(
    sizes: Sizes, sections: set[str], workdir: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    """Throughput and latency: one broker, a fresh topic and data directory per run."""
    largest = max(sizes.throughput_events, max(sizes.latency_rates) * sizes.latency_seconds)
    messages, source = simulated(int(largest) + 500)
    found: dict[str, Any] = {"source": source}
    with local_broker(workdir / "kafka") as bootstrap:
        if "throughput" in sections:
            found["throughput"] = throughput(sizes, bootstrap, messages, workdir, say)
        if "latency" in sections:
            found["latency"] = latency(sizes, bootstrap, messages, workdir, say)
    return found


def throughput(
    sizes: Sizes, bootstrap: str, messages: list[Any], workdir: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    say(f"throughput: raw consumer (decode only), {sizes.throughput_events:,} events")
    found["raw"] = endtoend.raw_throughput(bootstrap, messages[: sizes.throughput_events],
                                           PARTITIONS)  # fmt: skip
    count = sizes.throughput_events
    # The worker and Faust's floor alternate, so that their ratio compares the same
    # moments of the machine, whose speed drifts within minutes: one run of each compared
    # two moments, and the ratio moved by 0.2 from run to run. Each is reported by its
    # median run; every round's rate is kept (docs/benchmarks.md gives each pair's ratio).
    paired = (("worker", contenders.worker, 1800.0), ("faust-floor", contenders.faust_floor, 600.0))
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in paired}
    for index in range(sizes.floor_rounds):
        for name, factory, timeout in paired:
            say(f"throughput: {name}, {count:,} events (round {index + 1} of "
                f"{sizes.floor_rounds})")  # fmt: skip
            rounds[name].append(endtoend.throughput(
                factory, bootstrap, messages[:count], workdir / f"throughput-{name}-{index}",
                PARTITIONS, timeout,
            ))  # fmt: skip
    for name, runs in rounds.items():
        by_rate = sorted(runs, key=lambda run: float(run["rate"] or 0))
        found[name] = by_rate[len(by_rate) // 2] | {"rounds": [run["rate"] for run in runs]}
    naive = (("naive", contenders.naive, sizes.naive_events, sizes.naive_seconds),
             ("naive-no-insert", contenders.naive_no_insert, sizes.naive_no_insert_events,
              sizes.naive_seconds * 3))  # fmt: skip
    for name, factory, count, timeout in naive[: 2 if sizes.baselines_everywhere else 1]:
        say(f"throughput: {name}, {count:,} events")
        found[name] = endtoend.throughput(
            factory, bootstrap, messages[:count], workdir / f"throughput-{name}", PARTITIONS,
            timeout,
        )  # fmt: skip
    if sizes.sample_seconds:
        # A run of its own: py-spy takes CPU from the process it samples (and on two cores
        # from everything else), which cost the measured run a fifth of its rate.
        say(f"throughput: worker again, sampled by py-spy for {sizes.sample_seconds:.0f} s")
        profiled = endtoend.throughput(
            contenders.worker, bootstrap, messages[: sizes.throughput_events],
            workdir / "throughput-worker-profiled", PARTITIONS, 1800.0,
            sample=sizes.sample_seconds,
        )  # fmt: skip
        found["worker"]["main_thread"] = profiled["main_thread"]
        found["worker"]["profiled_rate"] = profiled["rate"]
    return found


def latency(
    sizes: Sizes, bootstrap: str, messages: list[Any], workdir: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    warm_up = messages[-200:]
    for rate in sizes.latency_rates:
        count = int(rate * sizes.latency_seconds)
        sample = messages[:count]
        found[str(rate)] = runs = {}
        say(f"latency at {rate:,}/s for {sizes.latency_seconds:.0f} s: raw consumer")
        runs["raw"] = endtoend.raw_latency(bootstrap, sample, workdir / "raw", PARTITIONS, rate)
        consumers = (("worker", contenders.worker, 120.0), ("naive", contenders.naive, 20.0))
        for name, factory, drain in consumers[: 2 if sizes.baselines_everywhere else 1]:
            say(f"latency at {rate:,}/s for {sizes.latency_seconds:.0f} s: {name}")
            runs[name] = endtoend.latency(
                factory, bootstrap, sample, warm_up, workdir / f"latency-{rate}-{name}",
                PARTITIONS, rate, drain,
            )  # fmt: skip
    rate = max(sizes.latency_rates)
    say(f"stop: SIGTERM to the worker 5 s into {rate:,} events/s")
    found["stop"] = endtoend.stop_under_load(
        contenders.worker, bootstrap, messages[: int(rate * 10)], warm_up, workdir / "stop",
        PARTITIONS, rate,
    )  # fmt: skip
    return found


def scale_out(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """One, two and three worker processes in one group, sharing one store (`scale`)."""
    messages, source = simulated(sizes.scale_events)
    with (
        local_broker(workdir / "kafka-scale") as bootstrap,
        scale.clickhouse_endpoint(workdir / "clickhouse-scale") as server,
    ):
        return scale.scale(bootstrap, server, messages, workdir, say) | {"source": source}


def http_collector(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """`journeys collect` against `journeys emit` on the same input (`collector`)."""
    messages, source = simulated(sizes.collector_events)
    with local_broker(workdir / "kafka-collector") as bootstrap:
        return collector.collector(bootstrap, messages, workdir, say) | {"source": source}


CONTEXT_EVENTS_PER_SECOND = 1_000.0  # what the worker carries while it answers
CONTEXT_REQUESTS_PER_SECOND = 250.0  # offered: the target is 200 answered a second


def context(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """The worker's context API at a fixed request rate while it carries events (`context`)."""
    during = int(CONTEXT_EVENTS_PER_SECOND * sizes.context_seconds)
    messages, source = simulated(sizes.context_preload + during + 10)
    say(
        f"context API: {CONTEXT_REQUESTS_PER_SECOND:.0f} requests/s for "
        f"{sizes.context_seconds:.0f} s, {CONTEXT_EVENTS_PER_SECOND:,.0f} events/s arriving"
    )
    with local_broker(workdir / "kafka-context") as bootstrap:
        found = context_api.context(
            bootstrap, messages, sizes.context_preload, workdir,
            events_per_second=CONTEXT_EVENTS_PER_SECOND,
            requests_per_second=CONTEXT_REQUESTS_PER_SECOND, seconds=sizes.context_seconds,
        )  # fmt: skip
    return found | {"source": source}


def delivery_isolation(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """A worker alone, then beside `journeys alerts deliver` retrying to a dead receiver
    (`isolation`; `--only context` runs it too)."""
    messages, source = simulated(sizes.isolation_events)
    say(f"delivery isolation: {sizes.isolation_events:,} events, a worker alone, then "
        "beside `journeys alerts deliver` retrying to a dead receiver")  # fmt: skip
    with local_broker(workdir / "kafka-isolation") as bootstrap:
        found = isolation.delivery_isolation(bootstrap, messages, workdir)
    return found | {"source": source}


def bulk_rescore(sizes: Sizes, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """`journeys rescore` over stored touchpoints (`benchmarks/rescore.py`)."""
    say(f"rescore: {sizes.rescore_events:,} stored touchpoints scored again, 2 processes")
    return _python("benchmarks.rescore", workdir / "rescore", sizes.rescore_events)


def run(sizes: Sizes, sections: set[str], say: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "context" in sections:  # the context section's figures include the isolation ratio
        sections = sections | {"isolation"}
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp:
        workdir = Path(tmp)
        for name in [s for s in SECTIONS if s in sections]:
            if name == "latency" and "throughput" in sections:
                continue  # ran together with throughput, on the same broker
            started = time.monotonic()
            if name in ("throughput", "latency"):
                results.update(streaming(sizes, sections, workdir, say))
            else:
                section = {"micro": micro, "scale": scale_out, "queries": queries,
                           "memory": memory, "collector": http_collector,
                           "context": context, "isolation": delivery_isolation,
                           "rescore": bulk_rescore}[name]  # fmt: skip
                results[name] = section(sizes, workdir, say)
            say(f"{name} done in {time.monotonic() - started:.0f} s")
    return results
