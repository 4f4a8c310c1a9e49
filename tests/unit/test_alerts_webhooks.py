"""The webhook configuration: department -> URL and secret; errors name the department and
the field, never the secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.alerts import WebhookConfigError, parse_webhooks, webhooks_from_settings
from pipeline.settings import load_settings

SECRET = "billing-secret-0123456789"


def test_a_department_gets_its_url_and_secret() -> None:
    text = json.dumps({"billing": {"url": "https://b.example/hook?token=x", "secret": SECRET}})
    webhook = parse_webhooks(text, "X")["billing"]
    assert webhook.url == "https://b.example/hook?token=x"
    assert webhook.shown_url == "https://b.example/hook"
    assert webhook.secret.get_secret_value() == SECRET
    assert SECRET not in repr(webhook)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[]", "expected a JSON object"),
        ("{", "not valid JSON"),
        ('{"Billing": {"url": "https://x", "secret": "' + SECRET + '"}}', "department slug"),
        ('{"billing": "https://x"}', "expected"),
        ('{"billing": {"url": "ftp://x", "secret": "' + SECRET + '"}}', "url must be an http"),
        ('{"billing": {"url": "https://x", "secret": "short"}}', "at least 16 bytes"),
        ('{"billing": {"url": "https://x", "secret": "' + SECRET + '", "x": 1}}', "unknown"),
    ],
)
def test_bad_configuration_is_named(config: str, message: str) -> None:
    with pytest.raises(WebhookConfigError, match=message) as caught:
        parse_webhooks(config, "JOURNEYS_ALERT_WEBHOOKS")
    assert "JOURNEYS_ALERT_WEBHOOKS" in str(caught.value)
    assert SECRET not in str(caught.value) and "short" not in str(caught.value)


def test_from_settings_inline_file_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.dumps({"billing": {"url": "https://b.example/h", "secret": SECRET}})
    assert webhooks_from_settings(load_settings()) == {}
    monkeypatch.setenv("JOURNEYS_ALERT_WEBHOOKS", config)
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert list(webhooks_from_settings(settings)) == ["billing"]
    path = tmp_path / "webhooks.json"
    path.write_text(config)
    monkeypatch.setenv("JOURNEYS_ALERT_WEBHOOKS_FILE", str(path))
    with pytest.raises(WebhookConfigError, match="both"):
        webhooks_from_settings(load_settings())
    monkeypatch.delenv("JOURNEYS_ALERT_WEBHOOKS")
    assert list(webhooks_from_settings(load_settings())) == ["billing"]
