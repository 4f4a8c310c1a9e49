"""`python -m benchmarks` (`make bench`): run the suite, print the table, write the docs.

    python -m benchmarks                  # full sizes (10M touchpoints, 1M journeys, ...)
    python -m benchmarks --quick          # smoke sizes, a couple of minutes
    python -m benchmarks --only queries   # some sections; earlier figures of others are kept

Figures accumulate in benchmarks/results.json (one entry per section, each with its run's
time and machine) and docs/benchmarks.md is rendered from all of them.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks import document, report, suite

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results.json")
DOC = REPO / "docs" / "benchmarks.md"
console = Console(stderr=True)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke sizes (a couple of minutes)")
    parser.add_argument(
        "--only", default=",".join(suite.SECTIONS),
        help=f"comma-separated sections among {', '.join(suite.SECTIONS)}",
    )  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS, help="figures file (JSON)")
    parser.add_argument("--doc", type=Path, default=DOC, help="markdown file to write")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(suite.SECTIONS)
    if unknown:
        parser.error(f"--only {args.only}: unknown {sorted(unknown)}; expected {suite.SECTIONS}")
    return args


def merged(previous: dict[str, Any], fresh: dict[str, Any], meta: dict[str, Any]) -> dict:
    """Fresh sections replace old ones; the run's metadata applies to what it measured."""
    out = dict(previous)
    out.update(fresh)
    out.update(meta)
    out["sections"] = [s for s in suite.SECTIONS if s in out]
    # When each section was last measured: a partial run leaves the others' figures (and
    # times) as they were.
    runs = dict(previous.get("runs", {}))
    runs.update(
        {s: f"{meta['started']} ({meta.get('mode', '?')})" for s in fresh if s in suite.SECTIONS}
    )
    out["runs"] = runs
    return out


def print_table(results: dict[str, Any]) -> None:
    table = Table(title="Benchmarks against the issue's targets")
    for column in ("figure", "this run", "target", "verdict"):
        table.add_column(column)
    for verdict in report.verdicts(results):
        style = {True: "green", False: "red", None: "dim"}[verdict.met]
        table.add_row(verdict.figure, verdict.value, verdict.target,
                      f"[{style}]{report.mark(verdict.met)}[/]")  # fmt: skip
    console.print(table)
    throughput = Table(title="Throughput (same run)")
    for column in ("consumer", "events", "rate", "worker / this", "CPU/event"):
        throughput.add_column(column)
    for row in report.throughput_rows(results):
        throughput.add_row(*row)
    console.print(throughput)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    sizes = suite.QUICK if args.quick else suite.FULL
    sections = set(args.only.split(","))
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = {"started": started, "mode": "quick" if args.quick else "full",
            "machine": document.machine(), "sizes": sizes.as_dict()}  # fmt: skip
    fresh = suite.run(sizes, sections, lambda text: console.log(text))
    previous = orjson.loads(args.results.read_bytes()) if args.results.exists() else {}
    results = merged(previous, fresh, meta)
    results["summary"] = report.summary(results)
    args.results.write_bytes(orjson.dumps(_finite(results), option=orjson.OPT_INDENT_2))
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(document.render(results))
    print_table(results)
    console.print(f"wrote {args.doc} and {args.results}")
    return 0


def _finite(value: Any) -> Any:
    """JSON has no infinity: an event never stored is written as null."""
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
