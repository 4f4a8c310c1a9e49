"""Alerts delivered to departments: each department's webhook gets the alerts of the
`journeys.alerts` topic addressed to it, signed, retried with back-off, at least once with
an idempotency key, and dead-lettered with the reason after the last attempt.

The worker publishes alerts and never waits for a webhook: delivery is its own process
(`journeys alerts deliver`), a consumer of the alerts topic in a consumer group of its own,
so a slow or dead receiver holds back only its own deliveries (docs/departments.md).

Pure parts (configuration, signing, retry schedule, the offsets safe to commit) are apart
from the edges (`deliver.py`: aiohttp and aiokafka). Only the CLI imports this package.
"""

from __future__ import annotations

from pipeline.alerts.exceptions import AlertDeliveryError, WebhookConfigError
from pipeline.alerts.signing import SignatureError, sign, signed_headers, verify
from pipeline.alerts.webhooks import Webhook, parse_webhooks, webhooks_from_settings

__all__ = [
    "AlertDeliveryError",
    "SignatureError",
    "Webhook",
    "WebhookConfigError",
    "parse_webhooks",
    "sign",
    "signed_headers",
    "verify",
    "webhooks_from_settings",
]
