"""The worker's topics: names from the settings, created with partitions and retention.

Values and keys travel as raw bytes: the validator decodes touchpoints itself (msgspec),
and a dead letter must keep the bytes exactly as they were received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import faust

from pipeline.settings import Settings

TICK_KEY = b"\x00tick"  # a routed-topic message with this key is an idle clock tick


@dataclass(frozen=True)
class Topics:
    inbound: Any  # touchpoints + routed: one channel, so the agent sees both
    routed: Any
    dead_letters: Any
    scores: Any
    alerts: Any
    erasures: Any

    def all(self) -> list[Any]:
        return [self.inbound, self.dead_letters, self.scores, self.alerts, self.erasures]


@dataclass(frozen=True)
class TopicNames:
    """The names of the topics a flush sends to."""

    routed: str
    dead_letters: str
    scores: str
    alerts: str

    @classmethod
    def of(cls, topics: Topics) -> TopicNames:
        return cls(
            routed=topics.routed.get_topic_name(),
            dead_letters=topics.dead_letters.get_topic_name(),
            scores=topics.scores.get_topic_name(),
            alerts=topics.alerts.get_topic_name(),
        )


def define_topics(app: faust.App, settings: Settings) -> Topics:
    retention = timedelta(days=settings.topic_retention_days)

    def topic(*names: str) -> Any:
        return app.topic(
            *names,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            retention=retention,
        )

    return Topics(
        inbound=topic(settings.topic_touchpoints, settings.topic_routed),
        routed=topic(settings.topic_routed),
        dead_letters=topic(settings.topic_dead_letters),
        scores=topic(settings.topic_scores),
        alerts=topic(settings.topic_alerts),
        # One partition: requests are handled in the order given, by the one worker that
        # holds it (pipeline/stream/erasures.py); short-lived, as the requests name customers.
        erasures=app.topic(
            settings.topic_erasures,
            key_serializer="raw",
            value_serializer="raw",
            partitions=1,
            retention=timedelta(hours=settings.erasure_topic_retention_hours),
        ),
    )
