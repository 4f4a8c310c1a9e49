"""The arithmetic of the benchmark suite: percentiles, rates and ratios.

Pure functions with no I/O so they can be tested exactly; every figure in
docs/benchmarks.md goes through here.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

MISSING = math.inf  # an event never stored within the wait counts as infinitely late


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks.

    The same definition as numpy's default, so figures can be checked by hand. An infinite
    value (an event that was never stored) is ranked last; a percentile landing on it is
    infinite, which is the honest answer when that share of events was never stored.
    """
    if not values:
        raise ValueError("percentile of no values: expected at least one measurement")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q={q!r}: expected a number from 0 to 100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    if fraction == 0 or ordered[low] == ordered[high]:
        return ordered[low]
    if math.isinf(ordered[high]):
        return math.inf
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@dataclass(frozen=True)
class Spread:
    """p50 / p95 / p99 / max of a set of measurements, in the unit they were taken in."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "p50": self.p50, "p95": self.p95, "p99": self.p99,
                "max": self.max}  # fmt: skip


def spread(values: Sequence[float]) -> Spread:
    return Spread(
        count=len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        max=max(values),
    )


def sustained_rate(timestamps: Sequence[float], trim: float = 0.1) -> float:
    """Events per second over the middle of a run, from the times events were stored.

    The first and last `trim` share of events is left out so that start-up (consumer group
    join, first fetch) and the drain at the end do not count against the steady state.
    """
    if len(timestamps) < 2:
        raise ValueError(f"sustained rate of {len(timestamps)} events: expected at least two")
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim={trim!r}: expected a share from 0 to just under 0.5")
    start = percentile(timestamps, trim * 100)
    end = percentile(timestamps, 100 - trim * 100)
    if end <= start:
        return math.inf
    return (len(timestamps) * (1 - 2 * trim)) / (end - start)


def progress_rate(samples: Sequence[tuple[float, int]], total: int, trim: float = 0.1) -> float:
    """Events per second from (time, events done so far) samples, over the middle of the run:
    from when `trim` of `total` was done to when `1 - trim` was (interpolated between
    samples). NaN when the run never got that far."""
    low, high = total * trim, total * (1 - trim)
    start, end = _crossing(samples, low), _crossing(samples, high)
    if start is None or end is None or end <= start:
        return math.nan
    return (high - low) / (end - start)


def _crossing(samples: Sequence[tuple[float, int]], level: float) -> float | None:
    previous: tuple[float, int] | None = None
    for at, done in samples:
        if done >= level:
            if previous is None or done == previous[1]:
                return at
            share = (level - previous[1]) / (done - previous[1])
            return previous[0] + (at - previous[0]) * share
        previous = (at, done)
    return None


def ratio(value: float, baseline: float) -> float:
    """How many times `baseline` the value is (inf when the baseline did nothing)."""
    if baseline < 0 or value < 0:
        raise ValueError(f"ratio of {value!r} to {baseline!r}: expected non-negative figures")
    if baseline == 0:
        return math.inf if value > 0 else math.nan
    return value / baseline


def latencies(sent: dict[str, float], stored: dict[str, float]) -> list[float]:
    """Per-event latency in seconds; events never stored count as MISSING (infinite)."""
    return [stored[key] - at if key in stored else MISSING for key, at in sent.items()]


def commit_times(
    positions: dict[str, tuple[int, int]], polls: Sequence[tuple[float, dict[int, int]]]
) -> dict[str, float]:
    """When each message was first seen committed: the first poll whose committed offset for
    its partition is past the message's offset (Kafka commits the next offset to read).
    Messages never seen committed are left out. `polls` must be in time order."""
    by_partition: dict[int, tuple[list[float], list[int]]] = {}
    for at, committed in polls:
        for partition, offset in committed.items():
            times, offsets = by_partition.setdefault(partition, ([], []))
            times.append(at)
            # A rebalance may briefly report an older offset; committed never goes back.
            offsets.append(max(offset, offsets[-1]) if offsets else offset)
    found = {}
    for key, (partition, offset) in positions.items():
        times, offsets = by_partition.get(partition, ([], []))
        index = bisect.bisect_right(offsets, offset)
        if index < len(offsets):
            found[key] = times[index]
    return found


def human_rate(per_second: float) -> str:
    if math.isinf(per_second) or math.isnan(per_second):
        return "n/a"
    if per_second >= 1_000_000:
        return f"{per_second / 1_000_000:.2f}M/s"
    if per_second >= 10_000:
        return f"{per_second / 1000:.0f}k/s"
    if per_second >= 1000:
        return f"{per_second / 1000:.1f}k/s"
    return f"{per_second:.0f}/s"


def human_seconds(seconds: float) -> str:
    """A duration at the precision a reader needs: us below 1 ms, ms below 1 s."""
    if math.isinf(seconds):
        return "never"
    if math.isnan(seconds):
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.2f} GiB"


def human_ratio(value: float) -> str:
    if math.isinf(value) or math.isnan(value):
        return "n/a"
    return f"{value:.2f}x"
