"""Errors of the collector, typed so the CLI can tell a configuration mistake from Kafka
being unreachable."""


class CollectorError(RuntimeError):
    """Base class: something about the collector a user must act on."""


class TokenConfigError(CollectorError):
    """JOURNEYS_COLLECTOR_TOKENS (or its file) is missing or malformed. The message names
    the entry by position, never the token itself."""


class KafkaUnavailable(CollectorError):
    """Kafka did not acknowledge in time, or refused: the request is answered 503."""
