"""docs/benchmarks.md: the machine, the commands, every figure, the verdicts and the notes.

`machine()` reads the host; `render()` is a pure function of the results, so the document
always says exactly what the run measured. Hand-written findings live in
`benchmarks/notes.md` and are included as they are.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.broker import JARS_DIR
from pipeline.compiled import ENGINE

NOTES = Path(__file__).with_name("notes.md")


def site_packages() -> str:
    import faust

    return str(Path(faust.__file__).parents[1]) + "/"


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    kafka = sorted(p.name for p in JARS_DIR.glob("kafka_*.jar")) if JARS_DIR.exists() else []
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory": _first("/proc/meminfo", "MemTotal"),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "kafka": kafka[0] if kafka else "unknown",
        "versions": {p: _version(p) for p in ("faust-streaming", "aiokafka", "chdb", "msgspec",
                                              "orjson", "kafka-python", "rocksdict")},
        "load_average": os.getloadavg(),
        "engine": ENGINE.describe(),  # the worker's, from the same install
    }  # fmt: skip


_CHECKOUT = re.compile(r"(?<![\w/])/[^\s:]*?/(?=(?:pipeline|benchmarks)/[\w/]+\.py:)")


def _section(title: str, intro: str, headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return f"## {title}\n\nNot measured in this run.\n"
    return f"## {title}\n\n{intro}\n\n{report.table(headers, rows)}\n"


RESCORE = (
    "`journeys rescore` over stored touchpoints (`benchmarks/rescore.py`): a simulated month "
    "scored offline into chdb and copied under renamed customers to the size shown, then "
    "scored again with a model of its own version by two spawned scoring processes, the "
    "main process reading shards and inserting the rows (and the views they feed) through "
    "chdb. Events/s is the touchpoints over the whole run; CPU per event is the main "
    "process's and the scoring processes' together."
)
RESCORE_COLUMNS = ["touchpoints", "journeys", "shards", "wall time", "events/s",
                   "main CPU per event", "scoring CPU per event"]  # fmt: skip


HOW_TO_RUN = """## How to run

```
make bench                                      # the full suite (about half an hour)
.venv/bin/python -m benchmarks --quick          # smoke sizes, a couple of minutes
.venv/bin/python -m benchmarks --only queries   # some sections; the others' figures are kept
```
"""


def render(results: dict[str, Any]) -> str:
    parts = [_header(results), HOW_TO_RUN, _machine(results), _targets(results)]
    parts += [
        _section("Throughput", THROUGHPUT, THROUGHPUT_COLUMNS, report.throughput_rows(results))
        + _floor_rounds(results),
        _section("Latency", LATENCY, LATENCY_COLUMNS, report.latency_rows(results)),
        _section("Scale-out", _scale_intro(results), SCALE_COLUMNS, report.scale_rows(results)),
        _section("HTTP collector", COLLECTOR, COLLECTOR_COLUMNS, report.collector_rows(results)),
        _section("Context API", CONTEXT, CONTEXT_COLUMNS, report.context_rows(results)),
        _section("Alert delivery beside the worker", ISOLATION, ISOLATION_COLUMNS,
                 report.isolation_rows(results)),
        _section("Rescore", RESCORE, RESCORE_COLUMNS, report.rescore_rows(results)),
        _section("Hot path", MICRO, ["step", "per event, one core"], report.micro_rows(results)),
        _section("Dashboard queries", _queries_intro(results), QUERY_COLUMNS,
                 report.query_rows(results)),
        _section("Memory", MEMORY, MEMORY_COLUMNS, report.memory_rows(results)),
        _profiles(results),
    ]  # fmt: skip
    if NOTES.exists():
        parts.append(NOTES.read_text())
    return "\n".join(parts)


def _header(results: dict[str, Any]) -> str:
    return (
        "# Benchmarks\n\nWritten by `make bench` (`python -m benchmarks`); do not edit by hand "
        "(findings go in `benchmarks/notes.md`, included below). Baselines run in the same run "
        "on the same machine, because absolute figures on a shared machine drift: read the "
        f"ratios.\n\nLast run: {results.get('started', '?')} ({results.get('mode', '?')} sizes); "
        f"events from {results.get('source', 'n/a')}. Each section was measured at:\n\n"
        + "".join(f"- {name}: {when}\n" for name, when in _section_runs(results).items())
    )


def _floor_rounds(results: dict[str, Any]) -> str:
    """Each round of the worker and Faust's floor, alternated, with their ratio."""
    runs = results.get("throughput", {})
    workers = runs.get("worker", {}).get("rounds") or []
    floors = runs.get("faust-floor", {}).get("rounds") or []
    if len(workers) < 2 or len(workers) != len(floors):
        return ""
    pairs = ", ".join(
        f"{report.human_rate(w)} / {report.human_rate(f)} ({report.human_ratio(w / f)})"
        for w, f in zip(workers, floors, strict=True)
    )
    return f"\nThe worker and Faust's floor alternated, round by round (worker / floor): {pairs}.\n"


def _section_runs(results: dict[str, Any]) -> dict[str, str]:
    """When each section's figures were taken (results from before per-section times: the
    run's own time, which is all that was recorded)."""
    runs = results.get("runs", {})
    fallback = f"{results.get('started', '?')} or earlier"
    return {name: runs.get(name, fallback) for name in results.get("sections", [])}


def _machine(results: dict[str, Any]) -> str:
    host = results.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in host.get("versions", {}).items())
    load = ", ".join(f"{x:.2f}" for x in host.get("load_average", ()))
    rows = [
        ["CPU", f"{host.get('cpu', '?')}, {host.get('cores', '?')} cores"],
        ["memory", _gib(str(host.get("memory", "?")))],
        ["OS", str(host.get("os", "?"))],
        ["Python", str(host.get("python", "?"))],
        ["broker", f"Apache Kafka, local KRaft broker ({host.get('kafka', '?')})"],
        ["libraries", versions],
        ["engine", str(host.get("engine", "?"))],
        ["load average at start (1, 5, 15 min), shared machine", load],
    ]
    return "## Machine\n\n" + report.table(["what", "value"], rows) + "\n"


def _gib(meminfo: str) -> str:
    """/proc/meminfo's "24684084 kB" as GiB."""
    number = meminfo.split()[0]
    return f"{int(number) / 1024**2:.1f} GiB" if number.isdigit() else meminfo


def _targets(results: dict[str, Any]) -> str:
    rows = [[v.figure, v.value, v.target, report.mark(v.met)] for v in report.verdicts(results)]
    return "## Targets\n\n" + report.table(["figure", "this run", "target", "verdict"], rows) + "\n"


THROUGHPUT_COLUMNS = ["consumer", "events", "sustained rate", "worker / this", "CPU per event"]
LATENCY_COLUMNS = ["input rate", "consumer", "p50", "p99", "max", "never stored", "stored is"]
SCALE_COLUMNS = ["worker processes", "events", "aggregate rate", "per worker", "x one worker",
                 "worker CPU per event", "engine CPU per stored row"]  # fmt: skip
COLLECTOR_COLUMNS = ["sender", "events", "rate", "p50 request", "p99 request", "outcome",
                     "collector CPU per event"]  # fmt: skip
CONTEXT_COLUMNS = ["requests", "events carried", "answered", "p50", "p95", "p99", "max",
                   "answers", "worker CPU (of one core)"]  # fmt: skip
ISOLATION_COLUMNS = ["worker", "events", "rate", "caught up", "alert delivery meanwhile",
                     "beside / alone"]  # fmt: skip
QUERY_COLUMNS = ["dashboard", "panel", "rows", "p50", "p95", "<= 100 ms"]
MEMORY_COLUMNS = ["table store", "active journeys", "RSS", "peak RSS", "encoded state",
                  "per journey", "<= 1 GiB"]  # fmt: skip


def _scale_intro(results: dict[str, Any]) -> str:
    found = results.get("scale", {})
    insert = found.get("insert", {})
    shown = (f" One {insert['rows']:,}-row insert into `touchpoints` through the endpoint, its "
             f"materialized views included, took {insert['seconds'] * 1000:.0f} ms "
             f"({insert['rows_per_second']:,.0f} rows/s).") if insert else ""  # fmt: skip
    return SCALE + f" Partitions: {found.get('partitions', '?')}." + shown


def _queries_intro(results: dict[str, Any]) -> str:
    found = results.get("queries", {})
    rows = ", ".join(f"{n:,} {t}" for t, n in found.get("rows", {}).items())
    return (QUERIES + f" Data: {rows}; generated in {found.get('generate_seconds', 0):.0f} s; "
            f"{found.get('active_parts', '?')} active parts when measured.")  # fmt: skip


def _profiles(results: dict[str, Any]) -> str:
    out = ["## Where the time goes\n"]
    worker = results.get("throughput", {}).get("worker")
    if worker and worker.get("cpu_by_thread"):
        threads = ", ".join(f"{k} {v:.1f} s" for k, v in list(worker["cpu_by_thread"].items())[:6])
        out.append(
            f"Worker CPU by thread during the throughput run ({worker['events']:,} events, "
            f"{worker['wall_seconds']:.0f} s wall, {worker['cpu_seconds']:.1f} s CPU): "
            f"{threads}. `python` is the event loop (Faust, aiokafka, the engine); "
            "`ThreadPool`, `MergeMutate` and `BgSchPool` are ClickHouse inside chdb.\n"
        )
    shares = (worker or {}).get("main_thread")
    if shares:
        rows = [[name, f"{share * 100:.1f}%"] for name, share in shares.items()]
        out.append("The worker's event loop (main thread) sampled with py-spy in a second "
                   "throughput run (sampling slows the process it samples, so the rate above "
                   "is from an unsampled run), by what it was doing:\n\n"
                   + report.table(["activity", "share of samples"], rows) + "\n")  # fmt: skip
    produced = (worker or {}).get("produced")
    if produced:
        per_event = ", ".join(f"{t} {n / worker['events']:.2f}" for t, n in produced.items())
        out.append(f"Messages the worker produced to Kafka per input event: {per_event}.\n")
    profile = results.get("micro", {}).get("profile")
    if profile:
        # Paths relative to the checkout, wherever it was (a run may be from a worktree).
        profile = _CHECKOUT.sub("", profile.replace(site_packages(), ""))
        out.append("cProfile of the processor alone (no Faust, no Kafka, no ClickHouse), by "
                   "own time:\n\n```\n" + profile.strip() + "\n```\n")  # fmt: skip
    return "\n".join(out)


THROUGHPUT = (
    "Sustained rate: events per second between the 10th and the 90th percentile of the times "
    "rows were stored (start-up and drain left out), from a topic filled before the consumer "
    "started. The naive agent is cut off after a fixed time and measured on what it stored; "
    "the one without its insert stores nothing and is measured by its committed offsets. "
    "CPU per event: the consumer process's CPU time (all threads) over the events. The worker "
    "and Faust's floor run alternately, three times each (the machine's speed drifts within "
    "minutes), and each row gives the median run."
)
LATENCY = (
    "Events sent at a fixed rate, each stamped with its send time; latency = stored - sent. "
    "`commit`: when the worker committed offsets covering the event, which it does only after "
    "ClickHouse acknowledged its rows (its `_ingested_at` is intake time, so the table cannot "
    "say); `table`: the row's `_ingested_at`, set at the insert itself; `decode`: when the raw "
    "consumer decoded it. Events not stored within the drain time count as never stored, which "
    "makes p99 infinite when more than 1% were not."
)
MICRO = (
    "Best of a few rounds on the simulator's messages; the engine rows come from "
    "`benchmarks/bench_engine.py`; the validator's own benchmark is "
    "`benchmarks/bench_validator.py`."
)
SCALE = (
    "Worker processes (`journeys run`'s app) in one consumer group sharing one store, in "
    "server mode: embedded chdb allows one process per data directory, so only the server "
    "path lets several workers write one database. The store is the test suite's ClickHouse "
    "HTTP endpoint (`tests/support/clickhouse_http.py`, chdb behind a small Python server: "
    "one process, one statement at a time), on the same machine as the broker and every "
    "worker, so all of them share its cores: the figures say what the pipeline's "
    "coordination costs and where this machine's wall is, not what more machines would "
    "give. The events are in the topic before the workers start together; the rate is taken "
    "from the group's committed offsets (a worker commits only after ClickHouse acknowledged "
    "the rows): what was left once the group was stable with every worker assigned, over the "
    "time to the last commit, so the joins and their rebalances are not in it (the wall "
    "rate, from the first start, is in results.json). CPU columns: the workers' CPU "
    "time over those events, and the endpoint's over the rows they stored (parsing, inserts, "
    "the dashboards' views, the reconciliation queries)."
)
COLLECTOR = (
    "The same input (the simulator's traffic, about 1% malformed) sent to one local broker "
    "(4 partitions) by `journeys collect` and by `journeys emit` (`benchmarks/collector.py`). "
    "The collector gets POSTs of 500 events (JSON Lines) from four keep-alive connections on "
    "loopback and answers each once Kafka acknowledged it (acks=all, idempotent): a "
    "request's latency is from its first byte sent to its answer read, and the rate is every "
    "event over the wall time from the first request to the last answer. The loader runs in "
    "the benchmark's process and shares the two cores with the collector and the broker. "
    "`journeys emit` is the command's wall time, its start-up included."
)
CONTEXT = (
    "One embedded worker (4 partitions) answers the context API while it carries 1,000 "
    "events/s of the simulator's traffic (`benchmarks/context.py`). A preload of the same "
    "traffic is stored first; the loader, a process of its own, asks at a fixed rate (open "
    "loop: a request's latency runs from the moment it was due, so a slow answer shows in "
    "the requests queued behind it), 4 in 5 requests for one journey "
    "(`/v1/journeys/{id}`), 1 in 5 for a customer's open journeys, ids drawn from the "
    "preload. Loader, worker and broker share the two cores."
)
ISOLATION = (
    "The same events (the simulator's traffic, preloaded) taken by a fresh worker alone, then "
    "by one beside `journeys alerts deliver` retrying every department's alerts to a webhook "
    "where nothing listens (`benchmarks/isolation.py`, a broker of its own; `--only "
    "isolation`): the delivery starts first with 4,000 alerts waiting, 6 attempts each with "
    "back-offs from 0.2 s, and the worker's own alerts join them. A worker's rate is events "
    "taken and processed a second (its counters, polled every 50 ms) over a window of steady "
    "state, from 20% to 90% of the events, and it must then catch up; the delivery's "
    "retries, dead letters and CPU seconds are those of the same window (its /metrics, "
    "/proc), and it must still be busy when the window closes. Worker, delivery and broker "
    "share the two cores."
)
QUERIES = (
    "Every panel and variable query of the committed dashboards and every alert rule, expanded "
    "by `tests/support/dashboards/macros.py` for the dashboard's default time range, after one "
    "warm-up run; data made inside ClickHouse through the public tables, so every materialized "
    "view filled its aggregate as the worker's inserts do."
)
MEMORY = (
    "A process holding the journeys the way the worker does (`benchmarks/memory.py`): the "
    "worker's own Faust app and table store (RocksDB per partition with the worker's options, "
    "or Faust's memory store), the wake-up schedule and the de-duplication window, each event "
    "read, added and written back as a live journey's events are. RSS after reading a tenth "
    "of the books back."
)
