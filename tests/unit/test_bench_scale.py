"""The scale section's figures from the group's commit progress (no broker here)."""

from __future__ import annotations

import math

from benchmarks.scale import summarise

ROWS = {"touchpoints": 100_000, "journeys": 50_000}
CPU = {"workers": 9.0, "endpoint": 1.5}


def test_the_rate_is_what_was_left_at_stable_over_the_time_to_the_last_commit() -> None:
    # Commits come in steps: a first checkpoint, then one of everything taken meanwhile.
    progress = [(10.0, 20_000), (11.0, 30_000), (19.0, 30_000), (20.0, 100_000)]
    found = summarise(progress, 100_000, 4.0, CPU, ROWS, workers=2)
    assert (found["rate"], found["rate_per_worker"]) == (8_000.0, 4_000.0)
    assert (found["stable_seconds"], found["wall_rate"]) == (6.0, 6_250.0)
    assert found["worker_cpu_us_per_event"] == 9.0 / 80_000 * 1e6
    assert found["endpoint_cpu_us_per_row"] == 1.5 / 120_000 * 1e6  # 1.5 rows an event


def test_no_rate_when_most_of_it_went_before_every_worker_joined() -> None:
    found = summarise([(10.0, 60_000), (12.0, 100_000)], 100_000, 4.0, CPU, ROWS, workers=3)
    assert math.isnan(found["rate"]) and found["wall_rate"] == 12_500.0
