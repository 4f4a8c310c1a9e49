"""Errors of alert delivery, typed so the CLI can tell a configuration mistake (exit 2)
from a receiver or Kafka that cannot be reached."""


class AlertDeliveryError(RuntimeError):
    """Base class: something about alert delivery a user must act on."""


class WebhookConfigError(AlertDeliveryError):
    """JOURNEYS_ALERT_WEBHOOKS (or its file) is missing or malformed. The message names the
    department and the field, never a secret."""
