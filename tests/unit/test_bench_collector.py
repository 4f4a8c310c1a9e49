"""The collector's benchmark figures: in the summary, the verdicts and the document."""

from __future__ import annotations

import math
from typing import Any

from benchmarks import document, report

COLLECTOR = {
    "events": 200_000, "batch": 500, "connections": 4, "rate": 54_000.0, "p50": 0.03,
    "p99": 0.1, "max": 0.14, "accepted": 198_000, "rejected": 2_000, "on_topic": 198_000,
    "cpu_us_per_event": 14.0, "requests": 400, "exit_code": 0,
    "emit": {"events": 200_000, "sent": 198_000, "rejected": 2_000, "rate": 22_000.0,
             "on_topic": 198_000, "seconds": 9.1},
}  # fmt: skip


def test_the_summary_carries_the_collectors_rate_p99_and_the_emit_baseline() -> None:
    flat = report.summary({"collector": COLLECTOR})
    assert (flat["collector_eps"], flat["collector_p99_s"], flat["emit_eps"]) == (
        54_000.0, 0.1, 22_000.0)  # fmt: skip
    assert all(math.isnan(report.summary({})[k]) for k in ("collector_eps", "emit_eps"))


def test_the_verdict_holds_the_collector_to_twenty_thousand_events_a_second() -> None:
    def verdict(results: dict[str, Any]) -> report.Verdict:
        (found,) = [v for v in report.verdicts(results) if v.figure.startswith("HTTP collector")]
        return found

    assert verdict({"collector": COLLECTOR}).met is True
    assert verdict({"collector": COLLECTOR | {"rate": 19_999.0}}).met is False
    assert verdict({}).met is None


def test_the_document_shows_both_senders() -> None:
    text = document.render({"collector": COLLECTOR, "machine": {}})
    section = text.split("## HTTP collector")[1].split("\n## ")[0]
    assert "| journeys collect, POSTs of 500 from 4 connections | 200,000 | 54k/s |" in section
    assert "| journeys emit FILE" in section and "22k/s" in section
