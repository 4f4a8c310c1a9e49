"""Errors of the local broker; the CLI prints their message and exits non-zero."""


class LocalBrokerError(RuntimeError):
    """Base class: something about the local Kafka broker a user must act on."""


class MissingPrerequisite(LocalBrokerError):
    """Java or Maven is absent or too old."""


class BrokerAlreadyRunning(LocalBrokerError):
    """A broker is already running over this data directory."""


class BrokerNotRunning(LocalBrokerError):
    """No broker runs over this data directory."""


class BrokerStartFailed(LocalBrokerError):
    """The broker did not come up; the message carries the end of its log."""
