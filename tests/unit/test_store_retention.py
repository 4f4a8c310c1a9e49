"""Retention TTLs from the settings: which ALTERs, and none when all is in place."""

from __future__ import annotations

import pytest

from pipeline.settings import SettingsError, load_settings
from pipeline.store.retention import RETAINED, current_ttl, retention_statements
from pipeline.store.topology import SINGLE_NODE, Topology, distributed_cluster

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


def test_on_a_cluster_the_ttls_go_to_the_local_tables_on_cluster() -> None:
    """A Distributed table has no TTL and takes no MODIFY TTL: the ALTERs name the local
    tables, ON CLUSTER, and what is in place is read from the local table."""
    distributed = "Distributed('prod-eu.1', 'journeys', 'touchpoints_local', cityHash64(c))"
    cluster = Topology(distributed_cluster(distributed))
    layout = {"touchpoints": distributed, "touchpoints_local": "Replicated" + PLAIN}
    assert retention_statements({"events": 30, "journeys": 0}, layout, cluster) == [
        "ALTER TABLE touchpoints_local ON CLUSTER `prod-eu.1` MODIFY TTL "
        "toDateTime(occurred_at) + toIntervalDay(30)"
    ]
    layout["touchpoints_local"] = "Replicated" + PLAIN.replace(
        " SETTINGS", " TTL toDateTime(occurred_at) + toIntervalDay(30) SETTINGS"
    )
    assert retention_statements({"events": 30, "journeys": 0}, layout, cluster) == []
    assert retention_statements({"events": 0, "journeys": 0}, layout, cluster) == [
        "ALTER TABLE touchpoints_local ON CLUSTER `prod-eu.1` REMOVE TTL"
    ]


def test_the_layout_is_told_by_the_touchpoints_engine() -> None:
    assert distributed_cluster("Distributed('c', 'db', 'touchpoints_local', rand())") == "c"
    assert distributed_cluster(PLAIN) is None and distributed_cluster("") is None
    assert SINGLE_NODE.mutable("journeys") == "journeys" and not SINGLE_NODE.insert_settings
    assert Topology("c").mutable("journeys") == "journeys_local ON CLUSTER `c`"
    assert "distributed_foreground_insert = 1" in Topology("c").insert_settings


def test_topics_may_not_outlive_the_tables() -> None:
    with pytest.raises(SettingsError, match="JOURNEYS_TOPIC_RETENTION_DAYS"):
        load_settings(topic_retention_days=30, retention_days_events=7)
    assert load_settings(topic_retention_days=7, retention_days_events=7).retention_days_events
