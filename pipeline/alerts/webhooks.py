"""Which department's alerts go where: department -> webhook URL and signing secret.

Pure: parsing the configuration (JOURNEYS_ALERT_WEBHOOKS or its file), no I/O beyond
reading that file. Secrets stay in `SecretStr`: no message, repr or log line holds one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from pipeline.alerts.exceptions import WebhookConfigError
from pipeline.contract.rules import is_slug

if TYPE_CHECKING:
    from pipeline.settings import Settings

MIN_SECRET = 16  # bytes: a shorter HMAC key is guessable


@dataclass(frozen=True)
class Webhook:
    department: str
    url: str
    secret: SecretStr = field(repr=False)

    @property
    def shown_url(self) -> str:
        """The URL without its query or credentials, for messages and dead letters: a
        receiver's URL may carry a token in its query string."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


def parse_webhooks(text: str, source: str) -> dict[str, Webhook]:
    """`{"department": {"url": "...", "secret": "..."}, ...}` as Webhooks by department."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise WebhookConfigError(
            f"{source}: not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}), expected an object mapping each department to its url and secret"
        ) from None
    if not isinstance(data, dict):
        raise WebhookConfigError(
            f"{source}: expected a JSON object mapping each department to its url and secret, "
            f"got {type(data).__name__}"
        )
    return {department: _webhook(department, entry, source) for department, entry in data.items()}


def _webhook(department: str, entry: Any, source: str) -> Webhook:
    where = f"{source}: department {department!r}"
    if not is_slug(department):
        raise WebhookConfigError(f"{where}: expected a department slug ([a-z][a-z0-9_]{{0,63}})")
    if not isinstance(entry, dict):
        raise WebhookConfigError(f'{where}: expected {{"url": ..., "secret": ...}}')
    unknown = sorted(set(entry) - {"url", "secret"})
    if unknown:
        raise WebhookConfigError(f"{where}: unknown field(s) {unknown}, expected url and secret")
    url, secret = entry.get("url"), entry.get("secret")
    if not isinstance(url, str) or not _is_http_url(url):
        raise WebhookConfigError(f"{where}: url must be an http(s) URL with a host")
    if not isinstance(secret, str) or len(secret.encode()) < MIN_SECRET:
        raise WebhookConfigError(f"{where}: secret must be a string of at least {MIN_SECRET} bytes")
    return Webhook(department, url, SecretStr(secret))


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def webhooks_from_settings(settings: Settings) -> dict[str, Webhook]:
    """The webhooks of JOURNEYS_ALERT_WEBHOOKS or JOURNEYS_ALERT_WEBHOOKS_FILE (one of them;
    neither: no department has a webhook)."""
    configured = settings.secret_text("alert_webhooks", WebhookConfigError)
    return parse_webhooks(*configured) if configured is not None else {}
