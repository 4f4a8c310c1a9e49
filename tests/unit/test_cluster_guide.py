"""The production guide's cluster example (docs/production.md, "A ClickHouse cluster"):
two shards of two replicas with their macros, the profile settings the cluster layout relies
on, and the same cluster name in the migrate command and docker-compose.yml's comment."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "production.md").read_text()
XML = [ET.fromstring(block) for block in re.findall(r"```xml\n(.*?)```", GUIDE, re.DOTALL)]


def examples(tag: str) -> list[ET.Element]:
    """The elements named `tag` in the guide's XML examples."""
    return [element for example in XML for element in example.iter(tag)]


def test_the_guide_shows_two_shards_of_two_replicas_with_their_macros() -> None:
    (servers,) = examples("remote_servers")
    (cluster,) = list(servers)
    hosts = []
    for shard in cluster.findall("shard"):
        assert shard.findtext("internal_replication") == "true"
        hosts.append([replica.findtext("host") for replica in shard.findall("replica")])
    assert [len(shard) for shard in hosts] == [2, 2]
    shard_of = {m.findtext("replica"): m.findtext("shard") for m in examples("macros")}
    assert {host: shard_of[host] for shard in hosts for host in shard} == {
        hosts[0][0]: "01", hosts[0][1]: "01", hosts[1][0]: "02", hosts[1][1]: "02"}  # fmt: skip
    assert f"journeys migrate --cluster {cluster.tag}\n" in GUIDE
    assert f'"--cluster", "{cluster.tag}"' in (REPO / "docker-compose.yml").read_text()


def test_the_guide_gives_the_users_the_settings_the_layout_relies_on() -> None:
    (profiles,) = examples("profiles")
    writer, grafana = list(profiles)
    assert writer.findtext("distributed_foreground_insert") == "1"
    for profile in (writer, grafana):
        assert profile.findtext("distributed_product_mode") == "global", profile.tag
    (user,) = examples("journeys_writer")
    assert user.findtext("profile") == writer.tag
    users = REPO / "dashboards" / "provisioning" / "clickhouse" / "users.d"
    assert f"<profile>{grafana.tag}</profile>" in (users / "journeys_grafana.xml").read_text()
