"""Retention TTLs from the settings: which ALTERs, and none when all is in place."""

from __future__ import annotations

import pytest

from pipeline.settings import SettingsError, load_settings
from pipeline.store.retention import RETAINED, current_ttl, retention_statements

PLAIN = "ReplacingMergeTree(v) ORDER BY v SETTINGS index_granularity = 8192"


def engines(ttl: str = "") -> dict[str, str]:
    clause = f" TTL {ttl}" if ttl else ""
    return {table: f"ReplacingMergeTree(v) ORDER BY v{clause} SETTINGS index_granularity = 8192"
            for table in RETAINED}  # fmt: skip


def test_each_retained_table_gets_the_ttl_of_its_setting() -> None:
    statements = retention_statements({"events": 30, "journeys": 400}, engines())
    assert "ALTER TABLE touchpoints MODIFY TTL toDateTime(occurred_at) + toIntervalDay(30)" in (
        statements
    )
    assert "ALTER TABLE journeys MODIFY TTL toDateTime(last_event_at) + toIntervalDay(400)" in (
        statements
    )
    assert len(statements) == len(RETAINED)


def test_nothing_runs_when_the_ttls_are_in_place_and_zero_removes_them() -> None:
    table = {"touchpoints": PLAIN.replace(" SETTINGS", " TTL toDateTime(occurred_at) + "
                                                      "toIntervalDay(30) SETTINGS")}  # fmt: skip
    assert current_ttl(table["touchpoints"]) == "toDateTime(occurred_at) + toIntervalDay(30)"
    assert retention_statements({"events": 30, "journeys": 0}, table) == []
    assert retention_statements({"events": 0, "journeys": 0}, table) == [
        "ALTER TABLE touchpoints REMOVE TTL"
    ]
    assert retention_statements({"events": 0, "journeys": 0}, {"touchpoints": PLAIN}) == []


def test_topics_may_not_outlive_the_tables() -> None:
    with pytest.raises(SettingsError, match="JOURNEYS_TOPIC_RETENTION_DAYS"):
        load_settings(topic_retention_days=30, retention_days_events=7)
    assert load_settings(topic_retention_days=7, retention_days_events=7).retention_days_events
