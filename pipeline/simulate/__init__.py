"""A realistic company's touchpoint traffic with planted breakdowns and delivery faults."""

from pipeline.simulate.config import (
    BREAKDOWN_PRESETS,
    DEFAULT_PRESET,
    FAILURE_KINDS,
    SimulationConfig,
    SimulationConfigError,
    default_start,
    parse_breakdowns,
)
from pipeline.simulate.faults import Delivery
from pipeline.simulate.generate import simulate
from pipeline.simulate.pacing import Pacer
from pipeline.simulate.summary import PlantedBreakdown, SimulationSummary

__all__ = [
    "BREAKDOWN_PRESETS",
    "DEFAULT_PRESET",
    "FAILURE_KINDS",
    "Delivery",
    "Pacer",
    "PlantedBreakdown",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationSummary",
    "default_start",
    "parse_breakdowns",
    "simulate",
]
