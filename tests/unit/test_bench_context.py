"""The context API's benchmark figures: in the summary (`context_p99_ms`, `context_rps`),
the verdicts (200 answered requests a second, p99 of 50 ms, every answer a 200 and the
worker keeping up) and the document; the loader's request paths."""

from __future__ import annotations

import json
import math
from typing import Any

from benchmarks import document, report
from benchmarks.context import _paths

CONTEXT = {
    "requests": 7500, "statuses": {"200": 7500}, "seconds": 30.1, "rate": 249.2,
    "offered_rate": 250.0, "connections": 16, "p50": 0.004, "p95": 0.012, "p99": 0.031,
    "max": 0.08, "events_per_second": 1000.0, "events_sent": 30_000, "preloaded": 20_000,
    "kept_up": True, "worker_cpu_seconds": 18.06, "load_average": [1.2, 1.1, 1.0],
}  # fmt: skip


def verdicts(results: dict[str, Any]) -> list[report.Verdict]:
    return [v for v in report.verdicts(results) if v.figure.startswith("context API")]


def test_the_summary_carries_the_context_apis_p99_in_ms_and_its_rate() -> None:
    flat = report.summary({"context": CONTEXT})
    assert flat["context_p99_ms"] == 31.0 and flat["context_rps"] == 249.2
    assert flat["context_eps"] == 1000.0
    assert all(math.isnan(report.summary({})[k]) for k in ("context_p99_ms", "context_rps"))


def test_the_verdicts_hold_the_api_to_200_a_second_within_50_ms_with_every_answer_a_200() -> None:
    assert [v.met for v in verdicts({"context": CONTEXT})] == [True, True]
    assert [v.met for v in verdicts({"context": CONTEXT | {"p99": 0.051}})] == [True, False]
    assert [v.met for v in verdicts({"context": CONTEXT | {"rate": 199.0}})] == [False, True]
    failing = CONTEXT | {"statuses": {"200": 7400, "503": 100}}
    assert [v.met for v in verdicts({"context": failing})] == [False, False]
    behind = CONTEXT | {"kept_up": False}
    assert [v.met for v in verdicts({"context": behind})] == [False, False]
    assert [v.met for v in verdicts({})] == [None, None]


def test_the_document_shows_the_run() -> None:
    text = document.render({"context": CONTEXT, "machine": {}})
    section = text.split("## Context API")[1].split("\n## ")[0]
    assert "| 250/s offered over 16 connections | 1,000/s (30,000 events; kept up) | 249/s |" in (
        section)  # fmt: skip
    assert "7,500 x 200" in section and "| 60% |" in section


def test_the_loader_asks_for_journeys_and_customers_of_the_preload_four_to_one() -> None:
    events = [{"event_id": f"e{n}", "journey_id": f"J/{n % 3}", "customer_id": f"c {n % 2}"}
              for n in range(10)]  # fmt: skip
    paths = _paths([(b"k", json.dumps(e).encode()) for e in events], count=100)
    journeys = [p for p in paths if p.startswith("/v1/journeys/")]
    customers = [p for p in paths if p.startswith("/v1/customers/")]
    assert (len(journeys), len(customers)) == (80, 20)
    assert {p.rsplit("/", 1)[1] for p in journeys} <= {"J%2F0", "J%2F1", "J%2F2"}
    assert all(p.endswith("/journeys?open=true") and "c%20" in p for p in customers)


ISOLATION = {
    "events": 20_000, "ratio": 0.93, "load_average": [1.0, 1.0, 1.0],
    "alone": {"rate": 8000.0, "kept_up": True, "worker_cpu_seconds": 9.0},
    "beside": {"rate": 7440.0, "kept_up": True, "worker_cpu_seconds": 9.5,
               "delivery": {"journeys_alerts_retried_total": 1234.0,
                            "journeys_alerts_dead_lettered_total": 210.0,
                            "cpu_seconds": 2.5, "alive": True}},
}  # fmt: skip


def isolation_verdict(results: dict[str, Any]) -> bool | None:
    (verdict,) = [v for v in report.verdicts(results) if "dead alert receiver" in v.figure]
    return verdict.met


def test_the_summary_carries_the_worker_beside_a_dead_receiver_over_alone() -> None:
    """The ratio the timed integration test used to assert is a benchmark figure now."""
    flat = report.summary({"context": CONTEXT | {"delivery_isolation": ISOLATION}})
    assert flat["delivery_isolation_ratio"] == 0.93
    assert math.isnan(report.summary({"context": CONTEXT})["delivery_isolation_ratio"])
    null = ISOLATION | {"ratio": None}  # NaN as results.json stores it
    assert math.isnan(report.summary({"context": {"delivery_isolation": null}})[
        "delivery_isolation_ratio"])  # fmt: skip
    assert isolation_verdict({"context": CONTEXT | {"delivery_isolation": ISOLATION}}) is True
    slowed = ISOLATION | {"ratio": 0.7}
    assert isolation_verdict({"context": {"delivery_isolation": slowed}}) is False
    behind = ISOLATION | {"beside": ISOLATION["beside"] | {"kept_up": False}}
    assert isolation_verdict({"context": {"delivery_isolation": behind}}) is False
    assert isolation_verdict({}) is None


def test_the_document_shows_both_worker_runs_and_what_the_delivery_did() -> None:
    text = document.render({"context": CONTEXT | {"delivery_isolation": ISOLATION},
                            "machine": {}})  # fmt: skip
    section = text.split("## Alert delivery beside the worker")[1].split("\n## ")[0]
    assert "| alone | 20,000 |" in section
    assert "1,234 retried, 210 dead-lettered, 2.5 s CPU | 0.93x |" in section


WINDOWED = {
    "events": 100_000, "window": [0.2, 0.9], "backlog": 4000, "ratio": 0.9,
    "load_average": [1.0, 1.0, 1.0],
    "alone": {"rate": 16000.0, "kept_up": True, "window_events": 70_012, "window_seconds": 4.4},
    "beside": {"rate": 14400.0, "kept_up": True, "window_events": 70_031, "window_seconds": 4.9,
               "delivery": {"journeys_alerts_retried_total": 900.0,
                            "journeys_alerts_dead_lettered_total": 150.0,
                            "cpu_seconds": 0.4, "busy_throughout": True, "alive": True}},
}  # fmt: skip


def test_the_isolation_section_is_read_over_its_window_and_needs_a_busy_delivery() -> None:
    """`--only isolation` files its figures apart from the context API's; a delivery that
    ran out of work before the window closed measured nothing: not met."""
    assert report.summary({"isolation": WINDOWED})["delivery_isolation_ratio"] == 0.9
    assert isolation_verdict({"isolation": WINDOWED}) is True
    idle = WINDOWED | {"beside": WINDOWED["beside"] | {
        "delivery": WINDOWED["beside"]["delivery"] | {"busy_throughout": False}}}  # fmt: skip
    assert isolation_verdict({"isolation": idle}) is False
    text = document.render({"isolation": WINDOWED, "machine": {}})
    section = text.split("## Alert delivery beside the worker")[1].split("\n## ")[0]
    assert "| alone | 70,012 of 100,000 in 4.4 s |" in section
    assert "150 dead-lettered, 0.4 s CPU, busy throughout | 0.90x |" in section
