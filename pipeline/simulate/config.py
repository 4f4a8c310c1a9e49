"""What to simulate: the company's size and period, where it breaks down, how delivery misbehaves.

A *breakdown* is a failure planted at one step of the company's processes, owned by one
department at one stage ("maintenance breaks visit promises"). Every failure kind also
happens at a small baseline rate everywhere, so the planted one has to stand out from noise
the way a real problem would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class SimulationConfigError(ValueError):
    """A simulation setting is invalid; the message names the setting, value and expectation."""


@dataclass(frozen=True)
class FailureKind:
    """One way a process step goes wrong, and who owns that step."""

    name: str
    department: str
    stage: str
    description: str


FAILURE_KINDS: dict[str, FailureKind] = {
    kind.name: kind
    for kind in (
        FailureKind("visit_promise", "maintenance", "service", "maintenance breaks visit promises"),
        FailureKind(
            "renewal_invoice", "billing", "renewal", "billing corrects invoices at renewal"
        ),
        FailureKind("delivery_delay", "delivery", "delivery", "delivery misses promised dates"),
        FailureKind(
            "lost_context", "customer_service", "service", "service desk hands off without context"
        ),
        FailureKind(
            "unanswered_feedback", "customer_service", "usage", "feedback left without an answer"
        ),
        FailureKind("invoice_error", "billing", "billing", "billing issues wrong invoices"),
        FailureKind("onboarding_rework", "delivery", "onboarding", "installations redone"),
    )
}

# Named profiles a newcomer can pick without knowing the failure kinds.
BREAKDOWN_PRESETS: dict[str, dict[str, float]] = {
    "maintenance-visits": {"visit_promise": 0.45},
    "billing-renewal": {"renewal_invoice": 0.55},
    "delivery-delays": {"delivery_delay": 0.45},
    "none": {},
}
DEFAULT_PRESET = "maintenance-visits"


def _share(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise SimulationConfigError(f"{name}: expected a share between 0 and 1, got {value!r}")
    return value


def parse_breakdowns(specs: tuple[str, ...] | list[str]) -> dict[str, float]:
    """`maintenance-visits` (a preset) or `visit_promise=0.4` (a kind and its share), merged."""
    rates: dict[str, float] = {}
    for spec in specs:
        if spec in BREAKDOWN_PRESETS:
            rates.update(BREAKDOWN_PRESETS[spec])
            continue
        name, sep, raw = spec.partition("=")
        if name not in FAILURE_KINDS:
            choices = ", ".join([*BREAKDOWN_PRESETS, *FAILURE_KINDS])
            raise SimulationConfigError(
                f"--breakdown: unknown {spec!r}; "
                f"expected a preset or KIND=SHARE with one of {choices}"
            )
        try:
            value = float(raw) if sep else 0.5
        except ValueError:
            raise SimulationConfigError(
                f"--breakdown {name}: expected a share like 0.4, got {raw!r}"
            ) from None
        rates[name] = _share(f"--breakdown {name}", value)
    return rates


def default_start(days: int, now: datetime | None = None) -> datetime:
    """The period ends at the current hour, so event time and wall time meet at the end."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(days=days)


@dataclass(frozen=True)
class SimulationConfig:
    customers: int = 2000
    days: int = 30
    seed: int = 7
    start: datetime = field(default_factory=lambda: default_start(30))
    breakdowns: dict[str, float] = field(
        default_factory=lambda: dict(BREAKDOWN_PRESETS[DEFAULT_PRESET])
    )
    baseline: float = 0.04
    survey_share: float = 0.2
    late_share: float = 0.01
    out_of_order_share: float = 0.05
    duplicate_share: float = 0.02
    malformed_share: float = 0.01

    def __post_init__(self) -> None:
        if not 1 <= self.customers <= 10_000_000:
            raise SimulationConfigError(
                f"customers: expected 1 to 10,000,000, got {self.customers!r}"
            )
        if not 1 <= self.days <= 3660:
            raise SimulationConfigError(f"days: expected 1 to 3660, got {self.days!r}")
        if self.start.tzinfo is None:
            raise SimulationConfigError(
                f"start: expected a timezone-aware time, got naive {self.start.isoformat()}"
            )
        for name in ("baseline", "survey_share", "late_share", "out_of_order_share"):
            _share(name, getattr(self, name))
        _share("duplicate_share", self.duplicate_share)
        _share("malformed_share", self.malformed_share)
        for kind, rate in self.breakdowns.items():
            if kind not in FAILURE_KINDS:
                raise SimulationConfigError(
                    f"breakdowns: unknown failure kind {kind!r}; expected one of "
                    + ", ".join(FAILURE_KINDS)
                )
            _share(f"breakdown {kind}", rate)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def failure_rate(self, kind: str) -> float:
        """The planted rate where one is planted, else the baseline."""
        return self.breakdowns.get(kind, self.baseline)
