"""Kafka edges: the local broker for development and tests, topic administration."""

from pipeline.kafka.exceptions import (
    BrokerAlreadyRunning,
    BrokerNotRunning,
    BrokerStartFailed,
    LocalBrokerError,
    MissingPrerequisite,
)
from pipeline.kafka.jars import ensure_jars
from pipeline.kafka.local import BrokerState, LocalBroker, broker_answers

__all__ = [
    "BrokerAlreadyRunning",
    "BrokerNotRunning",
    "BrokerStartFailed",
    "BrokerState",
    "LocalBroker",
    "LocalBrokerError",
    "MissingPrerequisite",
    "broker_answers",
    "ensure_jars",
]
