"""Did the loop close? Per department: alerts raised, how many were acted on in time, late,
not at all, and the median time to act (the `alert_outcomes` view, migration 0008)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from pipeline.store import Store

_T = "DateTime64(3, 'UTC')"
LOOP_CLOSURE_SQL = f"""
SELECT department, count() AS alerts, countIf(outcome = 'in_time') AS in_time,
       countIf(outcome = 'late') AS late, countIf(outcome = 'not_acted') AS not_acted,
       countIf(outcome = 'open') AS open,
       quantileExactInclusive(0.5)(seconds_to_act) AS median_seconds
FROM alert_outcomes
WHERE raised_at >= {{since:{_T}}} AND raised_at < {{until:{_T}}}
  AND ({{all_departments:UInt8}} = 1 OR has(splitByChar(',', {{departments:String}}), department))
GROUP BY department ORDER BY department"""


@dataclass(frozen=True)
class LoopClosure:
    """One department's alerts and what became of them. `open`: no action yet, deadline
    still ahead (counted in `alerts`, not in the share)."""

    department: str
    alerts: int
    in_time: int
    late: int
    not_acted: int
    open: int
    median_seconds_to_act: float | None  # over the alerts acted on, in time or late

    @property
    def share_in_time(self) -> float | None:
        """Alerts acted on in time, of those whose outcome is known."""
        decided = self.in_time + self.late + self.not_acted
        return self.in_time / decided if decided else None


def load_loop_closure(store: Store, params: dict[str, Any]) -> list[LoopClosure]:
    return [
        LoopClosure(
            department=row["department"],
            alerts=int(row["alerts"]),
            in_time=int(row["in_time"]),
            late=int(row["late"]),
            not_acted=int(row["not_acted"]),
            open=int(row["open"]),
            median_seconds_to_act=_number(row["median_seconds"]),
        )
        for row in store.query(LOOP_CLOSURE_SQL, params)
    ]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number  # NaN: nothing acted on


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def loop_closure_html(rows: list[LoopClosure]) -> str:
    if not rows:
        return "<p>No alert was raised in the period.</p>"
    body = "".join(
        f"<tr><td>{escape(r.department)}</td><td class='num'>{r.alerts:,}</td>"
        f"<td class='num'>{_share(r.share_in_time)}</td><td class='num'>{r.late:,}</td>"
        f"<td class='num'>{r.not_acted:,}</td><td class='num'>{r.open:,}</td>"
        f"<td class='num'>{duration(r.median_seconds_to_act)}</td></tr>"
        for r in rows
    )
    return (
        "<p>Alerts raised in the period (promises due soon or broken, feedback unanswered, "
        "journeys turned poor) and whether the department acted before the alert's deadline: "
        "a proactive update, a promise kept, feedback answered or a resolution in that "
        "journey.</p><table><tr><th>department</th><th class='num'>alerts</th>"
        "<th class='num'>acted on in time</th><th class='num'>late</th>"
        "<th class='num'>not acted on</th><th class='num'>still open</th>"
        f"<th class='num'>median time to act</th></tr>{body}</table>"
    )


def _share(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"
