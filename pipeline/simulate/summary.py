"""What a simulation planted, so a reader can check the pipeline found it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.simulate.config import FAILURE_KINDS
from pipeline.simulate.faults import FaultCounts


@dataclass(frozen=True)
class PlantedBreakdown:
    kind: str
    department: str
    stage: str
    description: str
    rate: float
    journeys: int


@dataclass
class SimulationSummary:
    seed: int
    start: datetime
    end: datetime
    customers: int
    journeys: int = 0
    journeys_found: int = 0  # what the engine will make of them (`journeys_as_assembled`)
    events: int = 0
    messages: int = 0
    surveys: int = 0
    journeys_by_template: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    planted_rates: dict[str, float] = field(default_factory=dict)
    faults: FaultCounts = field(default_factory=FaultCounts)

    @property
    def planted(self) -> list[PlantedBreakdown]:
        """The planted breakdowns, the most frequent first."""
        found = [
            PlantedBreakdown(
                kind,
                FAILURE_KINDS[kind].department,
                FAILURE_KINDS[kind].stage,
                FAILURE_KINDS[kind].description,
                rate,
                self.failures[kind],
            )
            for kind, rate in self.planted_rates.items()
        ]
        return sorted(found, key=lambda p: (-p.journeys, p.kind))

    def lines(self) -> list[str]:
        """The summary as short human-readable lines."""
        period = f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        lines = [
            f"seed {self.seed}: {self.customers:,} customers, {self.journeys:,} journeys, "
            f"{self.events:,} events in {self.messages:,} messages, {period}",
            *self._journeys_found(),
            "journeys: "
            + ", ".join(f"{name} {n:,}" for name, n in sorted(self.journeys_by_template.items())),
            f"surveys answered: {self.surveys:,}",
        ]
        for p in self.planted:
            lines.append(
                f"planted: {p.description} ({p.department} x {p.stage}): "
                f"{p.journeys:,} journeys at rate {p.rate:.0%}"
            )
        baseline = {k: n for k, n in self.failures.items() if k not in self.planted_rates}
        if baseline:
            lines.append(
                "baseline failures: " + ", ".join(f"{k} {n}" for k, n in sorted(baseline.items()))
            )
        f = self.faults
        lines.append(
            f"delivery faults: {f.late} late, {f.out_of_order} out of order, "
            f"{f.duplicates} duplicates, {f.malformed} malformed"
        )
        if f.malformed:
            by_department = ", ".join(
                f"{d or '(unreadable)'} {n}" for d, n in f.malformed_by_department.most_common()
            )
            lines.append(f"malformed by department: {by_department}")
        return lines

    def _journeys_found(self) -> list[str]:
        merged = self.journeys - self.journeys_found
        if not merged:
            return []
        return [
            f"{self.journeys_found:,} of them as the pipeline counts journeys: {merged:,} have "
            "no journey_id and continue the same customer's previous one (no inactivity gap "
            "or journey_closed between them)"
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "customers": self.customers,
            "journeys": self.journeys,
            "journeys_found": self.journeys_found,
            "events": self.events,
            "messages": self.messages,
            "surveys": self.surveys,
            "journeys_by_template": dict(self.journeys_by_template),
            "failures": dict(self.failures),
            "planted": [p.__dict__ for p in self.planted],
            "faults": {
                "late": self.faults.late,
                "out_of_order": self.faults.out_of_order,
                "duplicates": self.faults.duplicates,
                "malformed": self.faults.malformed,
                "malformed_by_department": dict(self.faults.malformed_by_department),
                "malformed_by_reason": dict(self.faults.malformed_by_reason),
            },
        }
