"""How long personal data is kept in ClickHouse: TTLs from the settings, not from a migration.

Migrations are checksummed SQL, fixed once applied; a retention is an operator's choice that
changes with the deployment. So `journeys migrate` and the worker's start, after the
migrations, set each table's TTL from JOURNEYS_RETENTION_DAYS_EVENTS and
JOURNEYS_RETENTION_DAYS_JOURNEYS (`ALTER TABLE ... MODIFY TTL`, or `REMOVE TTL` for 0), and
only where the table's current TTL differs: a MODIFY TTL re-reads every part once, which a
worker restart must not repeat.

Only tables that hold personal data are given a TTL: what names a customer (customer_id, or a
raw payload). Aggregates of counts keep their own (0002: 35 days per minute, none per
hour), so history panels outlive the rows. Not covered: promises, resolutions and
journey_band_entries (their times are aggregate-function columns), which an erasure removes
per customer; the refreshed tables follow their sources at each refresh.

On a cluster the TTL belongs on every node's `<table>_local` (a Distributed table has no
TTL and takes no MODIFY TTL): the ALTERs go there ON CLUSTER, and the connected node's local
table says what is in place (pipeline/store/topology.py tells the layout from the store).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pipeline.store.base import Store
from pipeline.store.topology import SINGLE_NODE, Topology, distributed_cluster

# table -> (which setting, the time a row expires from)
RETAINED: dict[str, tuple[str, str]] = {
    "touchpoints": ("events", "toDateTime(occurred_at)"),
    "dead_letters": ("events", "toDateTime(received_at)"),
    "rejections_per_hour": ("events", "hour"),  # example_raw: a payload's first 500 bytes
    "journeys": ("journeys", "toDateTime(last_event_at)"),
    "journey_signals": ("journeys", "toDateTime(effective_at)"),
    "signals_by_hour": ("journeys", "hour"),
    "signals_by_department": ("journeys", "hour"),
}
_TTL = re.compile(r" TTL (.+?)(?: SETTINGS |$)")


def current_ttl(engine_full: str) -> str:
    """The TTL expression of a table's `engine_full` ('' for none)."""
    match = _TTL.search(engine_full)
    return match.group(1) if match else ""


def wanted_ttl(expression: str, days: int) -> str:
    """As ClickHouse shows it back in `engine_full`, so the two compare as text."""
    return f"{expression} + toIntervalDay({days})" if days else ""


def retention_statements(
    days: dict[str, int], engines: dict[str, str], topology: Topology = SINGLE_NODE
) -> list[str]:
    """The ALTERs that bring each retained table (its engine in `engines`: name as in
    system.tables -> engine_full) to the TTL of its setting (`days`: 'events'/'journeys' ->
    days, 0: keep)."""
    statements = []
    for table, (kind, expression) in RETAINED.items():
        engine = engines.get(topology.local(table))
        if engine is None:
            continue
        wanted = wanted_ttl(expression, days[kind])
        if current_ttl(engine) == wanted:
            continue
        change = f"MODIFY TTL {wanted}" if wanted else "REMOVE TTL"
        statements.append(f"ALTER TABLE {topology.mutable(table)} {change}")
    return statements


def apply_retention(
    store: Store, events_days: int, journeys_days: int, say: Callable[[str], None] = lambda _: None
) -> list[str]:
    """Set the TTLs the settings ask for; the statements run (none when all is in place)."""
    rows = store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
    )
    engines = {str(r["name"]): str(r["engine_full"]) for r in rows}
    topology = Topology(distributed_cluster(engines.get("touchpoints", "")))
    statements = retention_statements({"events": events_days, "journeys": journeys_days},
                                      engines, topology)  # fmt: skip
    for statement in statements:
        say(statement)
        store.execute(statement)
    return statements
