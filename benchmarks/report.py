"""From the suite's figures to verdicts, a terminal table and docs/benchmarks.md.

Pure functions of the results dict (no I/O), so what the report claims is tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from benchmarks.stats import human_bytes, human_rate, human_ratio, human_seconds, ratio

GIB = 1024**3
TARGETS = {
    "throughput": 10_000.0,  # events/s per worker, end to end
    "vs_naive": 4.0,  # x the naive agent
    "vs_floor": 1.0,  # x Faust's per-event floor, same run
    "stop_seconds": 10.0,  # SIGTERM to exit 0, at 5,000 events/s of input
    "p99_at_5000": 2.0,  # seconds, event to stored
    "panel_p95": 0.100,  # seconds, every panel at 10M touchpoints
    "rss": float(GIB),  # worker RSS with 1M active journeys
    "collector": 20_000.0,  # events/s through journeys collect, POSTs of 500 on loopback
    "context_rps": 200.0,  # context API requests answered a second, worker at 1,000 events/s
    "context_p99_ms": 50.0,  # their p99, milliseconds
    # worker events/s beside `journeys alerts deliver` retrying to a dead receiver / alone:
    # delivery never slows the event path (its own process; both share the two cores)
    "delivery_isolation_ratio": 0.8,
    "rescore": 50_000.0,  # stored touchpoints scored again a second by journeys rescore
}


@dataclass(frozen=True)
class Verdict:
    figure: str
    value: str
    target: str
    met: bool | None  # None: not measured in this run


def seconds(value: float | None) -> float:
    """A latency read back from results.json, where an infinite one is stored as null."""
    return math.inf if value is None else float(value)


def _rate(results: dict[str, Any], name: str) -> float:
    value = results.get("throughput", {}).get(name, {}).get("rate", math.nan)
    return math.nan if value is None else float(value)


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    """The issue's targets against this run's figures."""
    worker, naive = _rate(results, "worker"), _rate(results, "naive")
    versus = ratio(worker, naive) if not (math.isnan(worker) or math.isnan(naive)) else math.nan
    run = results.get("latency", {}).get("5000", {}).get("worker")
    p99 = seconds(run["p99"]) if run else math.nan
    panels = results.get("queries", {}).get("queries", [])
    slowest = max(panels, key=lambda q: q["p95"]) if panels else None
    rss = results.get("memory", {}).get("rocksdb", {}).get("rss", math.nan)
    flat = summary(results)
    floor = flat["throughput_eps_1_worker"] / flat["faust_floor_eps"]
    stop = flat["stop_seconds_under_load"]
    return [
        _verdict("worker throughput, end to end", worker, human_rate(worker),
                 f">= {human_rate(TARGETS['throughput'])}", worker >= TARGETS["throughput"]),
        _verdict("worker / naive agent", versus, human_ratio(versus),
                 f">= {TARGETS['vs_naive']:.0f}x", versus >= TARGETS["vs_naive"]),
        _verdict("worker / Faust's per-event floor", floor, human_ratio(floor),
                 f">= {TARGETS['vs_floor']:.1f}x", floor >= TARGETS["vs_floor"]),
        _verdict("SIGTERM to exit 0 at 5,000/s of input", stop, human_seconds(stop),
                 f"< {human_seconds(TARGETS['stop_seconds'])}",
                 stop < TARGETS["stop_seconds"] and flat["stop_exit_code"] == 0),
        _verdict("p99 event-to-stored at 5,000/s", p99, human_seconds(p99),
                 f"<= {human_seconds(TARGETS['p99_at_5000'])}", p99 <= TARGETS["p99_at_5000"]),
        _verdict("slowest panel p95" + (f" ({slowest['panel']})" if slowest else ""),
                 slowest["p95"] if slowest else math.nan,
                 human_seconds(slowest["p95"]) if slowest else "n/a",
                 f"<= {human_seconds(TARGETS['panel_p95'])}",
                 bool(slowest and slowest["p95"] <= TARGETS["panel_p95"])),
        _verdict("worker RSS, 1M active journeys (RocksDB)", rss, human_bytes(rss),
                 f"<= {human_bytes(TARGETS['rss'])}", rss <= TARGETS["rss"]),
        _verdict("HTTP collector, POSTs of 500 events", flat["collector_eps"],
                 human_rate(flat["collector_eps"]), f">= {human_rate(TARGETS['collector'])}",
                 flat["collector_eps"] >= TARGETS["collector"]),
        *_context_verdicts(results, flat),
        _verdict("journeys rescore, stored touchpoints", flat["rescore_eps"],
                 human_rate(flat["rescore_eps"]), f">= {human_rate(TARGETS['rescore'])}",
                 flat["rescore_eps"] >= TARGETS["rescore"]),
    ]  # fmt: skip


def _context_verdicts(results: dict[str, Any], flat: dict[str, Any]) -> list[Verdict]:
    """Answered requests count only if every one was a 200 and the worker kept up."""
    found = results.get("context", {})
    healthy = found.get("statuses") == {"200": found.get("requests")} and bool(found.get("kept_up"))
    rps, p99_ms = flat["context_rps"], flat["context_p99_ms"]
    isolated = flat["delivery_isolation_ratio"]
    runs = isolation_results(results)
    # Both workers caught up, and the delivery was still at work when the window closed.
    isolation_healthy = all(
        runs.get(name, {}).get("kept_up") for name in ("alone", "beside")
    ) and runs.get("beside", {}).get("delivery", {}).get("busy_throughout", True)
    return [
        _verdict("context API requests/s, worker at 1,000 events/s", rps, f"{rps:.0f}/s",
                 f">= {TARGETS['context_rps']:.0f}/s", healthy and rps >= TARGETS["context_rps"]),
        _verdict("context API p99, same run", p99_ms, f"{p99_ms:.1f} ms",
                 f"<= {TARGETS['context_p99_ms']:.0f} ms",
                 healthy and p99_ms <= TARGETS["context_p99_ms"]),
        _verdict("worker beside a dead alert receiver / alone", isolated, f"{isolated:.2f}x",
                 f">= {TARGETS['delivery_isolation_ratio']:.1f}x",
                 isolation_healthy and isolated >= TARGETS["delivery_isolation_ratio"]),
    ]  # fmt: skip


def _scale_rate(results: dict[str, Any], workers: int) -> float:
    """Aggregate events/s of `workers` worker processes sharing one store (NaN: not run)."""
    value = results.get("scale", {}).get("runs", {}).get(str(workers), {}).get("rate")
    return math.nan if value is None else float(value)


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The flat figures `results.json` carries under `summary` (NaN: not measured).

    `throughput_eps_1_worker` is the embedded worker's (the throughput section);
    `throughput_eps_{1,2,3}_worker(s)_server` come from the scale section, where the
    workers share one store in server mode, the only mode several processes can share.
    """
    run = results.get("latency", {}).get("5000", {}).get("worker")
    stop = results.get("latency", {}).get("stop", {})
    return {
        "throughput_eps_1_worker": _rate(results, "worker"),
        "throughput_eps_1_worker_server": _scale_rate(results, 1),
        "throughput_eps_2_workers": _scale_rate(results, 2),
        "throughput_eps_3_workers": _scale_rate(results, 3),
        "faust_floor_eps": _rate(results, "faust-floor"),
        "raw_consumer_eps": _rate(results, "raw"),
        "naive_agent_eps": _rate(results, "naive"),
        "p99_s_at_5000": seconds(run["p99"]) if run else math.nan,
        "stop_seconds_under_load": stop.get("seconds", math.nan),
        "stop_exit_code": stop.get("exit_code"),
        **_collector_summary(results),
        **_context_summary(results),
        "rescore_eps": float(results.get("rescore", {}).get("rate", math.nan)),
        "measured_at": results.get("runs", {}).get("throughput", results.get("started")),
    }


def _collector_summary(results: dict[str, Any]) -> dict[str, float]:
    """The collector section's figures (NaN: not measured): its events/s and p99 request
    latency, and `journeys emit`'s events/s on the same input in the same run."""
    found = results.get("collector", {})
    return {
        "collector_eps": float(found.get("rate", math.nan)),
        "collector_p99_s": float(found.get("p99", math.nan)),
        "emit_eps": float(found.get("emit", {}).get("rate", math.nan)),
    }


def _context_summary(results: dict[str, Any]) -> dict[str, float]:
    """The context API's answered requests a second and their p99 in milliseconds (NaN: not
    measured), while the worker carried `context_eps` events a second."""
    found = results.get("context", {})
    return {
        "context_rps": float(found.get("rate", math.nan)),
        "context_p99_ms": float(found.get("p99", math.nan)) * 1000,
        "context_eps": float(found.get("events_per_second", math.nan)),
        "delivery_isolation_ratio": _number(isolation_results(results).get("ratio")),
    }


def isolation_results(results: dict[str, Any]) -> dict[str, Any]:
    """The `isolation` section's figures; earlier runs kept them in the context section's."""
    found = results.get("isolation") or results.get("context", {}).get("delivery_isolation")
    return found or {}


def _number(value: Any) -> float:
    """A figure read back from results.json, where NaN is stored as null (NaN: none)."""
    return math.nan if value is None else float(value)


def context_rows(results: dict[str, Any]) -> list[list[str]]:
    found = results.get("context")
    if not found:
        return []
    statuses = ", ".join(f"{n:,} x {code}" for code, n in sorted(found["statuses"].items()))
    return [[
        f"{found['offered_rate']:.0f}/s offered over {found['connections']} connections",
        f"{found['events_per_second']:,.0f}/s ({found['events_sent']:,} events; "
        f"{'kept up' if found['kept_up'] else 'fell behind'})",
        f"{found['rate']:.0f}/s", human_seconds(found["p50"]), human_seconds(found["p95"]),
        human_seconds(found["p99"]), human_seconds(found["max"]), statuses,
        f"{found.get('worker_cpu_seconds', math.nan) / found['seconds']:.0%}"
        if "worker_cpu_seconds" in found else "",
    ]]  # fmt: skip


def isolation_rows(results: dict[str, Any]) -> list[list[str]]:
    found = isolation_results(results)
    if not found:
        return []
    rows = []
    for name in ("alone", "beside"):
        run = found[name]
        delivery = run.get("delivery")
        events = f"{found['events']:,}"
        if "window_events" in run:  # measured over a window of steady state
            events = (f"{run['window_events']:,} of {found['events']:,} "
                      f"in {run['window_seconds']:.1f} s")  # fmt: skip
        busy = {True: ", busy throughout", False: ", idle before the window's end", None: ""}
        rows.append([
            "alone" if name == "alone" else "beside `journeys alerts deliver`, receiver down",
            events, human_rate(run["rate"]),
            "kept up" if run["kept_up"] else "fell behind",
            f"{delivery['journeys_alerts_retried_total']:,.0f} retried, "
            f"{delivery['journeys_alerts_dead_lettered_total']:,.0f} dead-lettered, "
            f"{delivery['cpu_seconds']:.1f} s CPU{busy[delivery.get('busy_throughout')]}"
            if delivery else "",
            f"{found['ratio']:.2f}x" if name == "beside" else "",
        ])  # fmt: skip
    return rows


def rescore_rows(results: dict[str, Any]) -> list[list[str]]:
    found = results.get("rescore")
    if not found:
        return []
    return [[
        f"{found['events']:,}", f"{found['journeys']:,}", f"{found['shards']}",
        f"{found['seconds']:.1f} s", f"{found['rate']:,.0f}",
        f"{found['main_cpu_us']:.0f} us", f"{found['workers_cpu_us']:.0f} us",
    ]]  # fmt: skip


def collector_rows(results: dict[str, Any]) -> list[list[str]]:
    found = results.get("collector")
    if not found:
        return []
    emitted = found["emit"]
    return [
        [f"journeys collect, POSTs of {found['batch']} from {found['connections']} connections",
         f"{found['events']:,}", human_rate(found["rate"]), human_seconds(found["p50"]),
         human_seconds(found["p99"]), f"{found['accepted']:,} acked, {found['rejected']:,} "
         f"refused, {found['on_topic']:,} on the topic", f"{found['cpu_us_per_event']:.0f} us"],
        ["journeys emit FILE (kafka-python; start-up included)", f"{emitted['events']:,}",
         human_rate(emitted["rate"]), "", "", f"{emitted['sent']:,} acked, "
         f"{emitted['rejected']:,} refused, {emitted['on_topic']:,} on the topic", ""],
    ]  # fmt: skip


def _verdict(figure: str, value: float, shown: str, target: str, met: bool) -> Verdict:
    measured = not (isinstance(value, float) and math.isnan(value))
    return Verdict(figure, shown if measured else "not run", target, met if measured else None)


def mark(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not run"}[met]


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def throughput_rows(results: dict[str, Any]) -> list[list[str]]:
    runs = results.get("throughput", {})
    worker = _rate(results, "worker")
    rows = []
    for name, label in (("worker", "worker (pipeline.app)"), ("naive", "naive agent"),
                        ("naive-no-insert", "naive agent without the insert"),
                        ("faust-floor", "Faust's batch loop alone, no work (Faust's floor)"),
                        ("raw", "raw consumer, decode only (ceiling)")):  # fmt: skip
        if name not in runs:
            continue
        run = runs[name]
        rate = _rate(results, name)
        cpu = run.get("cpu_seconds")
        per_event = f"{cpu / run['events'] * 1e6:.0f} us" if cpu and run.get("caught_up") else ""
        rows.append([label, f"{run['events']:,}", human_rate(rate),
                     human_ratio(ratio(worker, rate)) if name != "worker" else "1.00x",
                     per_event])  # fmt: skip
    return rows


def scale_rows(results: dict[str, Any]) -> list[list[str]]:
    """Per worker count: aggregate rate, per worker, speed-up, CPU per event, engine CPU."""
    runs = results.get("scale", {}).get("runs", {})
    one = _scale_rate(results, 1)
    rows = []
    for workers, run in sorted(runs.items(), key=lambda kv: int(kv[0])):
        rate = _scale_rate(results, int(workers))
        rows.append([workers, f"{run['events']:,}", human_rate(rate),
                     human_rate(rate / int(workers)), human_ratio(ratio(rate, one)),
                     f"{run['worker_cpu_us_per_event']:.0f} us",
                     f"{run['endpoint_cpu_us_per_row']:.0f} us"])  # fmt: skip
    return rows


def latency_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    rates = {k: v for k, v in results.get("latency", {}).items() if k.isdigit()}
    for rate, runs in sorted(rates.items(), key=lambda kv: int(kv[0])):
        for name in ("worker", "naive", "raw"):
            if name not in runs:
                continue
            run = runs[name]
            missing = f"{run['missing']:,} of {run['sent']:,}" if run["missing"] else "0"
            rows.append([f"{int(rate):,}/s", name, human_seconds(seconds(run["p50"])),
                         human_seconds(seconds(run["p99"])), human_seconds(seconds(run["max"])),
                         missing,
                         run.get("stored_by", "")])  # fmt: skip
    return rows


def query_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [q["dashboard"], q["panel"], f"{q['rows']:,}", human_seconds(q["p50"]),
         human_seconds(q["p95"]), mark(q["p95"] <= TARGETS["panel_p95"])]
        for q in results.get("queries", {}).get("queries", [])
    ]  # fmt: skip


def memory_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [store, f"{run['journeys']:,}", human_bytes(run["rss"]), human_bytes(run["peak_rss"]),
         human_bytes(run["state_bytes"]), f"{run['state_bytes'] / run['journeys']:.0f} B",
         mark(run["rss"] <= TARGETS["rss"]) if store == "rocksdb" else "(not the default)"]
        for store, run in results.get("memory", {}).items()
    ]  # fmt: skip


def micro_rows(results: dict[str, Any]) -> list[list[str]]:
    micro = results.get("micro")
    if not micro:
        return []
    engine = micro["engine"]
    return [
        ["validation (simulated mix)", human_seconds(micro["validation"]["per_event"])],
        ["journey update + re-score, 5-event journey, via table bytes",
         human_seconds(engine["per_event_5"])],
        ["journey update + re-score, 50-event journey, via table bytes",
         human_seconds(engine["per_event_50"])],
        ["journey update + re-score, 50-event journey, book already in memory",
         human_seconds(engine.get("cached_50", math.nan))],
        ["sink row building + JSONEachRow (touchpoints)",
         human_seconds(micro["sink_rows"]["per_event"])],
        ["whole processor: validate, route, de-dup, score, all rows",
         human_seconds(micro["processor"]["per_event"])],
    ]  # fmt: skip
