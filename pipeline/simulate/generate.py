"""A company's month of traffic: customers, their journeys, and the messages sent to Kafka.

Each customer draws from its own random source seeded by (seed, customer), so the output is
reproducible and a customer's story does not change when the company grows.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise

from pipeline.journey import ScoreModel, load_score_model
from pipeline.simulate.company import TEMPLATES
from pipeline.simulate.config import SimulationConfig
from pipeline.simulate.faults import Delivery, deliver
from pipeline.simulate.journey import Event, JourneyWriter
from pipeline.simulate.summary import SimulationSummary
from pipeline.simulate.surveys import answers, signal_counts, skip_former_answer_draws

_JOURNEYS_PER_CUSTOMER = (1, 1, 1, 2, 2, 3)


@cache
def _engine_model() -> ScoreModel:
    """The model whose signals customers answer surveys about (surveys.py), and whose gap
    `journeys_as_assembled` applies."""
    return load_score_model()


def simulate(config: SimulationConfig) -> tuple[list[Delivery], SimulationSummary]:
    """Every message the company sends over the period, in sending order, and what was planted."""
    summary = SimulationSummary(
        seed=config.seed,
        start=config.start.astimezone(UTC),
        end=config.end.astimezone(UTC),
        customers=config.customers,
        planted_rates=dict(config.breakdowns),
    )
    events: list[tuple[datetime, Event]] = []
    for number in range(1, config.customers + 1):
        events.extend(customer_events(config, f"CUST-{number:07d}", summary))
    events.sort(key=lambda item: (item[0], item[1]["event_id"]))
    summary.journeys_found = journeys_as_assembled(events, _engine_model())
    shares = {
        "late": config.late_share,
        "out_of_order": config.out_of_order_share,
        "duplicate": config.duplicate_share,
        "malformed": config.malformed_share,
    }
    rng = random.Random(f"{config.seed}:delivery")
    deliveries = deliver(events, rng, shares, summary.faults)
    summary.events = len(events)
    summary.messages = len(deliveries)
    return deliveries, summary


def journeys_as_assembled(events: list[tuple[datetime, Event]], model: ScoreModel) -> int:
    """How many journeys the engine will make of these events, which is fewer than were
    simulated: a customer's journeys without a journey_id are one journey to the engine
    until an inactivity gap or a `journey_closed` (the contract's rule), so two such
    journeys close together are one. The demo says so next to both numbers."""
    keyed = {e["journey_id"] for _, e in events if "journey_id" in e}
    by_customer: dict[str, list[tuple[datetime, str, str]]] = {}
    for at, e in events:
        if "journey_id" not in e:
            by_customer.setdefault(e["customer_id"], []).append((at, e["event_id"], e["type"]))
    gap = timedelta(microseconds=model.inactivity_gap_us)
    segments = 0
    for timeline in by_customer.values():
        timeline.sort()
        segments += 1 + sum(
            kind == "journey_closed" or later - at > gap
            for (at, _, kind), (later, _, _) in pairwise(timeline)
        )
    return len(keyed) + segments


def customer_events(
    config: SimulationConfig, customer_id: str, summary: SimulationSummary
) -> list[tuple[datetime, Event]]:
    rng = random.Random(f"{config.seed}:{customer_id}")
    # A source of its own, so the answers' noise leaves the customer's story as it was.
    feelings = random.Random(f"{config.seed}:{customer_id}:survey")
    templates = [t for t, _, _, _ in TEMPLATES]
    weights = [w for _, w, _, _ in TEMPLATES]
    events: list[tuple[datetime, Event]] = []
    end = config.end.astimezone(UTC)
    for _ in range(rng.choice(_JOURNEYS_PER_CUSTOMER)):
        index = rng.choices(range(len(templates)), weights)[0]
        template, _, prefix, span = TEMPLATES[index]
        latest = max(0.0, (config.end - config.start - span).total_seconds())
        begin = config.start.astimezone(UTC) + timedelta(seconds=rng.uniform(0, latest))
        journey_id = f"{prefix}-{rng.getrandbits(40):010x}" if prefix else None
        writer = JourneyWriter(rng, customer_id, journey_id, begin)
        template(writer, config.failure_rate)
        if rng.random() < config.survey_share:
            writer.later(hours=2)
            skip_former_answer_draws(rng, happy=not writer.failures)
            lived = [e for e in writer.events if datetime.fromisoformat(e["occurred_at"]) <= end]
            csat, nps = answers(signal_counts(lived, end, _engine_model()), feelings)
            writer.survey(str(writer.events[-1].get("stage", "usage")), csat, nps)
            summary.surveys += 1
        summary.journeys += 1
        summary.journeys_by_template[template.__name__] += 1
        summary.failures.update(writer.failures)
        # The period ends at `end` (by default the current hour): what would happen later
        # has not happened yet, and would be refused as a future timestamp.
        timed = ((datetime.fromisoformat(e["occurred_at"]), e) for e in writer.events)
        events.extend((at, e) for at, e in timed if at <= end)
    return events
