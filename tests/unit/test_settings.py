"""The settings object: defaults, environment overrides, and errors that name the variable."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from pipeline.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("JOURNEYS_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_stack() -> None:
    settings = load_settings()
    assert settings.clickhouse_mode == "embedded"
    assert settings.data_dir == Path(".journeys")
    assert settings.clickhouse_dir == Path(".journeys/clickhouse")
    assert settings.topic_touchpoints == "touchpoints"
    assert settings.topic_dead_letters == "touchpoints.dlq"
    assert settings.topic_scores == "journeys.scores"
    assert settings.topic_alerts == "journeys.alerts"
    assert settings.kafka_client_options() == {"security_protocol": "PLAINTEXT"}


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_CLICKHOUSE_MODE", "server")
    monkeypatch.setenv("JOURNEYS_CLICKHOUSE_URL", "https://ch.example:8443")
    monkeypatch.setenv("JOURNEYS_CLICKHOUSE_PASSWORD", "s3cret")
    monkeypatch.setenv("JOURNEYS_TOPIC_TOUCHPOINTS", "acme.touchpoints")
    settings = load_settings()
    assert settings.clickhouse_mode == "server"
    assert settings.clickhouse_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.topic_touchpoints == "acme.touchpoints"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("JOURNEYS_CLICKHOUSE_MODE", "cloud", "'embedded' or 'server'"),
        ("JOURNEYS_KAFKA_BOOTSTRAP_SERVERS", "localhost", "host:port"),
        ("JOURNEYS_KAFKA_BOOTSTRAP_SERVERS", "a:1,b:notaport", "host:port"),
        ("JOURNEYS_KAFKA_LOCAL_PORT", "70000", "less than or equal to 65535"),
        ("JOURNEYS_TOPIC_PARTITIONS", "zero", "integer"),
        ("JOURNEYS_CLICKHOUSE_URL", "localhost:8123", "pattern"),
        ("JOURNEYS_TOPIC_ALERTS", "bad topic", "pattern"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert variable in str(error.value)
    assert expected in str(error.value)


def test_sasl_without_credentials_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("JOURNEYS_KAFKA_SASL_USERNAME", "ops")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert "JOURNEYS_KAFKA_SASL_MECHANISM" in message
    assert "JOURNEYS_KAFKA_SASL_PASSWORD" in message
    assert "JOURNEYS_KAFKA_SASL_USERNAME" not in message


def test_sasl_options_reach_the_kafka_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("JOURNEYS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("JOURNEYS_KAFKA_SASL_USERNAME", "ops")
    monkeypatch.setenv("JOURNEYS_KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("JOURNEYS_KAFKA_SSL_CAFILE", "/etc/ca.pem")
    options = load_settings().kafka_client_options()
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ops",
        "sasl_plain_password": "pw",
        "ssl_cafile": "/etc/ca.pem",
    }


def test_aiokafka_clients_get_the_brokers_and_a_tls_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert settings.aiokafka_client_options() == {
        "security_protocol": "PLAINTEXT",
        "bootstrap_servers": settings.bootstrap_servers,
    }
    monkeypatch.setenv("JOURNEYS_KAFKA_SECURITY_PROTOCOL", "SSL")
    options = load_settings().aiokafka_client_options()
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {"security_protocol": "SSL", "bootstrap_servers": settings.bootstrap_servers}


def test_a_bad_password_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_KAFKA_SECURITY_PROTOCOL", "SASL_PLAIN_TEXT_TYPO")
    monkeypatch.setenv("JOURNEYS_CLICKHOUSE_PASSWORD", "hunter2")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "hunter2" not in str(error.value)
    assert "JOURNEYS_KAFKA_SECURITY_PROTOCOL" in str(error.value)


def test_explicit_bootstrap_servers_win_over_the_local_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOURNEYS_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    assert load_settings().bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_unset_bootstrap_servers_with_no_local_broker_are_its_preferred_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Where `journeys kafka start` will put it: a worker started first waits there.
    monkeypatch.delenv("JOURNEYS_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("JOURNEYS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("JOURNEYS_KAFKA_LOCAL_PORT", "19092")
    assert load_settings().bootstrap_servers == "127.0.0.1:19092"


def test_every_setting_says_what_it_means() -> None:
    from pipeline.cli.config import describe_settings
    from pipeline.settings import Settings

    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []
    rows = describe_settings(load_settings(clickhouse_password="pw"))
    password = ("JOURNEYS_CLICKHOUSE_PASSWORD", "********", "ClickHouse password (server mode).")
    assert password in rows
