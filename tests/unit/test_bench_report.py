"""What the benchmark report claims follows from the figures: verdicts, ratios, the document."""

from __future__ import annotations

import math
from typing import Any

from benchmarks import document, report
from benchmarks.__main__ import _finite, merged
from benchmarks.stats import human_rate

PANEL = {"dashboard": "ops", "panel": "Touchpoints per minute", "type": "timeseries",
         "rows": 60, "p50": 0.02, "p95": 0.04, "p99": 0.05, "max": 0.05, "count": 20}  # fmt: skip


def results(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "throughput": {
            "worker": {"events": 1000, "rate": 12_000.0, "cpu_seconds": 0.5, "caught_up": True},
            "naive": {"events": 100, "rate": 2_000.0, "cpu_seconds": 0.2, "caught_up": False},
            "faust-floor": {"events": 1000, "rate": 24_000.0, "cpu_seconds": 0.1,
                            "caught_up": True},
            "raw": {"events": 1000, "rate": 240_000.0},
        },
        "latency": {"5000": {"worker": {"p50": 0.8, "p99": 1.5, "max": 2.0, "sent": 100,
                                        "missing": 0, "stored_by": "commit"}}},
        "queries": {"queries": [PANEL, {**PANEL, "panel": "Heatmap", "p95": 0.25}]},
        "memory": {"rocksdb": {"journeys": 10, "rss": 900 * 1024**2, "peak_rss": 1,
                               "state_bytes": 100}},
    }  # fmt: skip
    base.update(overrides)
    return base


def test_verdicts_compare_each_figure_with_its_target() -> None:
    found = {v.figure.split(" (")[0]: v for v in report.verdicts(results())}
    assert found["worker throughput, end to end"].met is True
    assert found["worker / naive agent"].value == "6.00x"
    assert found["worker / naive agent"].met is True
    assert found["p99 event-to-stored at 5,000/s"].met is True
    assert found["slowest panel p95"].met is False
    assert "Heatmap" in [v.figure for v in report.verdicts(results())][5]
    assert found["worker RSS, 1M active journeys"].met is True
    assert (found["worker / Faust's per-event floor"].value, found["worker / Faust's "
            "per-event floor"].met) == ("0.50x", False)  # fmt: skip
    assert found["SIGTERM to exit 0 at 5,000/s of input"].met is None  # not measured
    assert found["journeys rescore, stored touchpoints"].met is None


def test_the_rescore_rate_is_a_verdict_and_in_the_summary() -> None:
    def rescore(rate: float) -> report.Verdict:
        found = results(rescore={"rate": rate})
        assert report.summary(found)["rescore_eps"] == rate
        return next(v for v in report.verdicts(found) if v.figure.startswith("journeys rescore"))

    assert (rescore(66_000.0).value, rescore(66_000.0).met) == (human_rate(66_000.0), True)
    assert rescore(32_700.0).met is False


def test_the_summary_is_flat_and_names_the_issue_keys() -> None:
    stop = {"seconds": 1.5, "exit_code": 0, "rate": 5000}
    flat = report.summary(results(latency={**results()["latency"], "stop": stop}))
    assert {k: flat[k] for k in ("throughput_eps_1_worker", "faust_floor_eps",
            "raw_consumer_eps", "p99_s_at_5000", "stop_seconds_under_load")} == {
        "throughput_eps_1_worker": 12_000.0, "faust_floor_eps": 24_000.0,
        "raw_consumer_eps": 240_000.0, "p99_s_at_5000": 1.5, "stop_seconds_under_load": 1.5,
    }  # fmt: skip
    assert not any(isinstance(v, dict | list) for v in flat.values())
    killed = report.summary(results(latency={"stop": {"seconds": 3.0, "exit_code": -11}}))
    verdict = next(v for v in report.verdicts(results(latency={"stop": {"seconds": 3.0,
                   "exit_code": -11}})) if v.figure.startswith("SIGTERM"))  # fmt: skip
    assert killed["stop_exit_code"] == -11 and verdict.met is False  # a crash is no clean stop


def test_a_section_not_run_is_said_so_not_failed() -> None:
    verdicts = report.verdicts({})
    assert {v.met for v in verdicts} == {None}
    assert {v.value for v in verdicts} == {"not run"}


def test_a_p99_stored_as_null_reads_back_as_never() -> None:
    stored = _finite(results(latency={"5000": {"worker": {
        "p50": 0.5, "p99": math.inf, "max": math.inf, "sent": 10, "missing": 5}}}))  # fmt: skip
    assert stored["latency"]["5000"]["worker"]["p99"] is None
    p99 = next(v for v in report.verdicts(stored) if v.figure.startswith("p99"))
    assert (p99.value, p99.met) == ("never", False)
    assert report.latency_rows(stored)[0][3] == "never"
    assert report.latency_rows(stored)[0][5] == "5 of 10"


def test_throughput_rows_give_the_worker_against_each_baseline() -> None:
    rows = {row[0]: row for row in report.throughput_rows(results())}
    assert rows["worker (pipeline.app)"][3] == "1.00x"
    assert rows["naive agent"][3] == "6.00x"
    assert rows["raw consumer, decode only (ceiling)"][3] == "0.05x"
    assert rows["Faust's batch loop alone, no work (Faust's floor)"][3] == "0.50x"
    assert rows["Faust's batch loop alone, no work (Faust's floor)"][4] == "100 us"
    assert rows["worker (pipeline.app)"][4] == "500 us"
    assert rows["naive agent"][4] == ""  # cut off: CPU over all events would mislead


def test_markdown_table_escapes_pipes() -> None:
    assert report.table(["a"], [["x | y"]]).splitlines()[-1] == "| x \\| y |"


def test_document_shows_every_section_and_the_verdicts() -> None:
    text = document.render(results(machine={"cpu": "Test CPU", "cores": 2}))
    for heading in ("## Machine", "## Targets", "## Throughput", "## Latency",
                    "## Dashboard queries", "## Memory"):  # fmt: skip
        assert heading in text
    assert "Test CPU, 2 cores" in text
    assert "| Heatmap | 60 | 20.0 ms | 250.0 ms | MISSED |" in text
    assert "## Hot path\n\nNot measured in this run." in text


def test_a_partial_run_keeps_the_other_sections() -> None:
    previous = {"queries": {"queries": [PANEL]}, "started": "old"}
    out = merged(previous, {"memory": {"rocksdb": {}}}, {"started": "new"})
    assert out["queries"] == {"queries": [PANEL]}
    assert out["started"] == "new"
    assert out["sections"] == ["queries", "memory"]
    assert out["runs"] == {"memory": "new (?)"}  # queries keeps no time it never had
    again = merged(out, {"queries": {"queries": []}}, {"started": "newer", "mode": "full"})
    assert again["runs"] == {"memory": "new (?)", "queries": "newer (full)"}


def test_two_and_three_workers_come_from_the_scale_section() -> None:
    runs = {str(n): {"workers": n, "events": 1000, "rate": rate, "worker_cpu_us_per_event": 210.0,
                     "endpoint_cpu_us_per_row": 31.0}
            for n, rate in ((1, 4000.0), (2, 6000.0), (3, 6600.0))}  # fmt: skip
    scale = {"runs": runs, "partitions": 6, "insert": {"rows": 10_000, "seconds": 0.25,
                                                       "rows_per_second": 40_000.0}}  # fmt: skip
    flat = report.summary(results(scale=scale))
    assert {k: flat[k] for k in ("throughput_eps_1_worker", "throughput_eps_1_worker_server",
            "throughput_eps_2_workers", "throughput_eps_3_workers")} == {
        "throughput_eps_1_worker": 12_000.0, "throughput_eps_1_worker_server": 4000.0,
        "throughput_eps_2_workers": 6000.0, "throughput_eps_3_workers": 6600.0,
    }  # fmt: skip
    assert report.scale_rows(results(scale=scale))[1] == [
        "2", "1,000", human_rate(6000.0), human_rate(3000.0), "1.50x", "210 us", "31 us"
    ]  # fmt: skip
    page = document.render(results(scale=scale))
    assert "## Scale-out" in page and "40,000 rows/s" in page
    assert math.isnan(report.summary(results())["throughput_eps_2_workers"])  # not run


def test_the_document_gives_each_round_of_the_worker_against_faust_s_floor() -> None:
    runs = results()["throughput"]
    runs["worker"] |= {"rounds": [9_000.0, 12_000.0, 8_000.0]}
    runs["faust-floor"] |= {"rounds": [10_000.0, 24_000.0, 8_000.0]}
    text = document.render(results(throughput=runs))
    assert (
        "round by round (worker / floor): 9.0k/s / 10k/s (0.90x), "
        "12k/s / 24k/s (0.50x), 8.0k/s / 8.0k/s (1.00x)."
    ) in text
    assert "round by round" not in document.render(results())  # one round: no such line
