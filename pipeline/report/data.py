"""What the report shows, read through the `Store` interface from the public tables.

Every query reads the ReplacingMergeTree tables with FINAL (a replayed or re-sent row
counts once) and only active signals (a retracted signal has `active = 0` in its latest
version). The same SQL runs on chdb and on a ClickHouse server.

Time range: signals by `effective_at`, journeys by `last_event_at`, touchpoints by
`occurred_at` (all event time); rejected messages by `received_at`, since a message that
could not be read has no trustworthy event time. Departments: signals and rejections of
those departments; journeys that have a touchpoint from one of them.

Two bases, never mixed in one figure: every *points* figure (heatmap, breakdowns, each
cell's share, the share lost beyond the front desk) is a sum over the same signals, those
`SIGNAL_BASIS` describes; every *journey* figure (counts, bands, average score, word of
mouth) counts the journeys `JOURNEY_BASIS` describes. With a department filter the two
differ on purpose: the department's own points, and the journeys it took part in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pipeline.report.loop import LoopClosure


@dataclass(frozen=True)
class ReportFilter:
    since: datetime | None = None
    until: datetime | None = None
    departments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_window(self.since, self.until)

    def params(self) -> dict[str, Any]:
        return {
            "since": _ch_time(self.since or datetime(1970, 1, 1, tzinfo=UTC)),
            "until": _ch_time(self.until or datetime(2200, 1, 1, tzinfo=UTC)),
            # Department slugs cannot hold a comma, so a joined list is unambiguous.
            "departments": ",".join(self.departments),
            "all_departments": int(not self.departments),
        }

    def describe(self) -> str:
        if self.since or self.until:
            since = f"{self.since:%Y-%m-%d %H:%M} UTC" if self.since else "the beginning"
            until = f"{self.until:%Y-%m-%d %H:%M} UTC" if self.until else "now"
            when = f"{since} to {until}"
        else:
            when = "all time"
        who = ", ".join(self.departments) if self.departments else "all departments"
        return f"{when}; {who}"


def _ch_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass(frozen=True)
class Breakdown:
    """Points lost by one department at one stage through one kind of signal."""

    department: str
    stage: str
    signal: str
    signals: int
    lost_points: float
    example_reason: str
    example_journeys: list[str]


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    department: str
    stage: str
    what: str
    impact: float | None = None


@dataclass(frozen=True)
class StoryGroup:
    """Good and poor journeys of one group, for the word-of-mouth balance."""

    name: str
    journeys: int
    good: int
    poor: int

    @property
    def balance(self) -> int:
        """Net stories told: 3 per good journey, minus 18 per poor one (docs/concepts.md)."""
        return 3 * self.good - 18 * self.poor


@dataclass
class ReportData:
    filter: ReportFilter
    generated_at: datetime
    front_desk: frozenset[str] = frozenset()
    good_at_least: float = 75.0
    poor_below: float = 50.0
    model_version: str = ""  # the score model whose rows are shown
    journeys: int = 0
    touchpoints: int = 0
    good: int = 0
    neutral: int = 0
    poor: int = 0
    average_score: float | None = None
    # The journeys that lost points beyond the front desk, as a StoryGroup; the rest follow.
    hit_beyond_front_desk: StoryGroup | None = None
    first_event: datetime | None = None
    last_event: datetime | None = None
    # (department, stage) -> points lost (a positive magnitude)
    heatmap: dict[tuple[str, str], float] = field(default_factory=dict)
    # day -> (journeys, average score, good, poor)
    trend: list[tuple[date, int, float, int, int]] = field(default_factory=list)
    breakdowns: list[Breakdown] = field(default_factory=list)
    timelines: dict[str, list[TimelineEntry]] = field(default_factory=dict)
    # (department or "", reason_code) -> rejected messages
    rejections: dict[tuple[str, str], int] = field(default_factory=dict)
    # Per department: alerts raised in the period and whether they were acted on in time.
    loop_closure: list[LoopClosure] = field(default_factory=list)

    @property
    def word_of_mouth(self) -> int:
        """Net stories told: 3 per good journey, minus 18 per poor one (docs/concepts.md)."""
        return 3 * self.good - 18 * self.poor

    @property
    def lost_points(self) -> float:
        """Points lost by the signals of the points basis (the heatmap's total)."""
        return sum(self.heatmap.values())

    @property
    def lost_beyond_front_desk(self) -> float:
        return sum(v for (d, _), v in self.heatmap.items() if d not in self.front_desk)

    @property
    def share_beyond_front_desk(self) -> float | None:
        return self.lost_beyond_front_desk / self.lost_points if self.lost_points else None

    def share_of_lost(self, lost: float) -> float:
        """`lost` as a share of all points lost, on the same basis."""
        return lost / self.lost_points if self.lost_points else 0.0

    @property
    def signal_basis(self) -> str:
        who = ", ".join(self.filter.departments) if self.filter.departments else "any department"
        return f"points lost through signals attributed to {who}, dated in the period"

    @property
    def journey_basis(self) -> str:
        basis = "journeys whose last event is in the period"
        if self.filter.departments:
            basis += f" and that {', '.join(self.filter.departments)} took part in"
        return basis

    def story_groups(self) -> list[StoryGroup]:
        """All journeys, then those that lost points beyond the front desk and the rest."""
        everyone = StoryGroup("all journeys", self.journeys, self.good, self.poor)
        hit = self.hit_beyond_front_desk
        if hit is None:
            return [everyone]
        rest = StoryGroup("no points lost beyond it", self.journeys - hit.journeys,
                          self.good - hit.good, self.poor - hit.poor)  # fmt: skip
        return [everyone, hit, rest]

    def top_cells(self) -> list[tuple[tuple[str, str], float]]:
        """Department x stage cells, the most points lost first."""
        return sorted(self.heatmap.items(), key=lambda item: (-item[1], item[0]))

    def rejections_by_department(self) -> list[tuple[str, int]]:
        totals: dict[str, int] = {}
        for (department, _), count in self.rejections.items():
            totals[department] = totals.get(department, 0) + count
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def check_window(since: datetime | None, until: datetime | None, flag: str = "") -> None:
    """Both ends timezone-aware, since before until (`flag` "--" names them as options)."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name}: expected a timezone-aware time, got {value}")
    if since and until and since >= until:
        raise ValueError(f"{flag}since ({since}) must be before {flag}until ({until})")
