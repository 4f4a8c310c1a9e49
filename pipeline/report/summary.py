"""The report's findings as a few terminal lines (what `journeys demo` prints)."""

from __future__ import annotations

from pipeline.report.data import ReportData
from pipeline.report.loop import duration
from pipeline.report.words import signal_words


def summary_lines(data: ReportData, top: int = 5) -> list[str]:
    lines = [
        f"{data.journeys:,} journeys, {data.touchpoints:,} touchpoints; "
        f"good {data.good:,} / neutral {data.neutral:,} / poor {data.poor:,}",
        "top breakdowns (department x stage, points lost, share of all points lost):",
    ]
    for rank, ((department, stage), lost) in enumerate(data.top_cells()[:top], start=1):
        signals = [
            signal_words(b.signal)
            for b in data.breakdowns
            if (b.department, b.stage) == (department, stage)
        ]
        why = f" ({'; '.join(signals)})" if signals else ""
        lines.append(
            f"  {rank}. {department} x {stage}: {lost:,.0f} points, "
            f"{data.share_of_lost(lost):.0%}{why}"
        )
    share = data.share_beyond_front_desk
    lines.append(
        "lost beyond the front desk: "
        + (
            f"{share:.0%} of {data.lost_points:,.0f} points"
            if share is not None
            else "nothing lost"
        )
    )
    lines.append(f"  (basis: {data.signal_basis})")
    lines.append(
        f"word-of-mouth balance: {data.word_of_mouth:+,} stories "
        f"(3 x {data.good:,} good - 18 x {data.poor:,} poor journeys)"
    )
    hit = data.hit_beyond_front_desk
    if hit is not None and hit.journeys:
        lines.append(
            f"  of which the {hit.journeys:,} journeys that lost points beyond the front desk: "
            f"{hit.balance:+,} (3 x {hit.good:,} - 18 x {hit.poor:,})"
        )
    rejected = data.rejections_by_department()
    lines.append(
        "rejected events by department: "
        + (", ".join(f"{d or '(unreadable)'} {n:,}" for d, n in rejected) or "none")
    )
    if data.loop_closure:
        lines.append("alerts acted on in time (median time to act): " + ", ".join(
            f"{r.department} {_share(r.share_in_time)} of {r.alerts - r.open:,} "
            f"({duration(r.median_seconds_to_act)})"
            for r in data.loop_closure
        ))  # fmt: skip
    return lines


def _share(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"
