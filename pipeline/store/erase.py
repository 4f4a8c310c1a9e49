"""Erase customers from every table, and read the erasure ledger: the store side of issue 22.

`erase_customers` is the one erasure function: `journeys erase` calls it directly when no
worker runs, and the worker calls it when it reads an erasure request from the erasures
topic (in embedded mode the worker's process owns chdb, so the deleting must happen there).
Its steps, in an order that keeps every panel consistent once it returns:

1. Per customer, before anything is deleted: the days its touchpoints and dead letters fall
   on (the keys of the aggregates that are not per customer), and the rows it has per table.
2. Delete its rows from the base tables (touchpoints, journeys, journey_signals, the dead
   letters whose raw payload names it) and from every aggregate keyed by customer or journey
   (signals_by_*, promises, resolutions, journey_band_entries, recent_journey_snapshots)
   and the alerts raised about its journeys.
   `ALTER TABLE ... DELETE` with mutations_sync = 2 rewrites the parts now: the rows are
   gone from disk, not only masked as a lightweight DELETE leaves them until a merge.
3. Recompute the aggregates keyed by time alone (touchpoints_per_minute, ...) for the
   affected days: delete those days' rows and insert them again from the base tables with
   the materialized view's own SELECT. The `uniq` states in them hold hashes of event and
   journey ids, which would otherwise keep counting the erased customer's events.
4. Refresh the refreshable views (journey_day_stats, open_promises, ...) and wait for them.

On a cluster (`journeys migrate --cluster`) the deletes of steps 2 and 3 go to the
`*_local` tables ON CLUSTER (pipeline/store/topology.py: a Distributed table takes no
mutation), the re-inserts of step 3 through the Distributed tables, each row to the shard
its key names. Step 4 can refresh only the node the store is connected to (SYSTEM REFRESH
VIEW has no ON CLUSTER form); the other nodes' refreshed tables follow at their next
scheduled refresh (1 to 5 minutes), so the customer's rows in the two of them that name
customers (open_promises, resolution_times) are deleted ON CLUSTER with the others.

A worker writing rows while step 3 runs could see its new rows of an affected day deleted
with the old ones, which is why the worker runs erasures between its checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import orjson

from pipeline.store.base import Store
from pipeline.store.erasure import (
    ErasureLedger,
    ErasureOutcome,
    customer_hash,
    ledger_row,
)
from pipeline.store.topology import Topology, topology_of

LEDGER_TABLE = "erasures"

# Tables holding a `customer_id` column: the customer's rows are deleted outright.
CUSTOMER_TABLES = (
    "touchpoints",
    "journeys",
    "journey_signals",
    "signals_by_hour",
    "signals_by_department",
    "journey_band_entries",
    "promises",
    "resolutions",
    "recent_journey_snapshots",
    # The alerts raised about the customer's journeys (0008; the `alert_outcomes` view
    # reads it, so the loop-closure figures lose the customer's alerts with it).
    "alerts",
)
# Refreshable views' targets holding `customer_id`: recomputed by the refresh (their rows
# of the customer are counted before, as removed).
REFRESHED_CUSTOMER_TABLES = ("open_promises", "resolution_times")
REFRESHABLE_VIEWS = (
    "journey_day_stats_mv",
    "open_promises_mv",
    "resolution_times_mv",
    "journeys_active_blocks_mv",
    "signal_day_cells_mv",
    "journey_cell_days_mv",
)
SPANS = (1, 2, 4, 8, 16, 32, 64)  # journeys_active_block_parts' block lengths (0005)


@dataclass(frozen=True)
class Recompute:
    """An aggregate keyed by time, fed from `source` by a view: `key_day` is the day of
    a target row, `source_day` of a source row; `select` is the view's SELECT."""

    table: str
    key_day: str
    source_day: str
    select: str


# The views' SELECTs of 0002 and 0005, filtered to the affected days by the caller.
TOUCHPOINT_AGGREGATES = (
    Recompute(
        "touchpoints_per_minute", "toDate(minute)", "toDate(occurred_at)",
        "SELECT toStartOfMinute(occurred_at) AS minute, department, "
        "uniqState(event_id) AS events FROM touchpoints WHERE {days} "
        "GROUP BY minute, department",
    ),
    Recompute(
        "touchpoints_per_hour", "toDate(hour)", "toDate(occurred_at)",
        "SELECT toStartOfHour(occurred_at) AS hour, department, stage, "
        "uniqState(event_id) AS events, uniqState(journey_id) AS journeys FROM touchpoints "
        "WHERE {days} GROUP BY hour, department, stage",
    ),
    Recompute(
        "accepted_per_hour", "toDate(hour)", "toDate(occurred_at)",
        "SELECT toStartOfHour(occurred_at) AS hour, department, uniqState(event_id) AS events "
        "FROM touchpoints WHERE {days} GROUP BY hour, department",
    ),
)  # fmt: skip
INGESTED_AGGREGATE = Recompute(
    "touchpoints_ingested_per_minute", "toDate(minute)", "toDate(_ingested_at)",
    "SELECT toStartOfMinute(_ingested_at) AS minute, department, uniqState(event_id) AS rows, "
    "quantilesTDigestState(0.5, 0.95, 0.99)(greatest(dateDiff('millisecond', occurred_at, "
    "_ingested_at), 0) / 1000.0) AS latency_seconds, max(greatest(dateDiff('millisecond', "
    "occurred_at, _ingested_at), 0) / 1000.0) AS latency_max_seconds FROM touchpoints "
    "WHERE {days} GROUP BY minute, department",
)  # fmt: skip
REJECTIONS_AGGREGATE = Recompute(
    "rejections_per_hour", "toDate(hour)", "toDate(received_at)",
    "SELECT toStartOfHour(received_at) AS hour, department, reason_code, "
    "uniqState(source_topic, source_partition, source_offset) AS rejections, "
    "max(reason) AS example_reason, max(substring(raw, 1, 500)) AS example_raw "
    "FROM dead_letters WHERE {days} GROUP BY hour, department, reason_code",
)  # fmt: skip
MUTATION = " SETTINGS mutations_sync = 2"


def dead_letter_match(customer_id: str) -> tuple[str, dict[str, str]]:
    """The condition on dead_letters for payloads that name the customer: the JSON's
    `customer_id`, or the id as a JSON string anywhere in the raw bytes (a payload the
    validator could not parse, or one whose id sits in another field). The quoted form
    keeps "c-1" from matching "c-10"."""
    quoted = orjson.dumps(customer_id).decode()
    return (
        "(JSONExtractString(raw, 'customer_id') = {customer:String} "
        "OR position(raw, {quoted:String}) > 0)",
        {"customer": customer_id, "quoted": quoted},
    )


def blocks_of(days: Sequence[date]) -> list[tuple[int, date]]:
    """The (span_days, first_day) blocks of journeys_active_block_parts holding `days`."""
    epoch = date(1970, 1, 1)
    blocks = set()
    for day in days:
        number = (day - epoch).days
        for span in SPANS:
            blocks.add((span, epoch + timedelta(days=number - number % span)))
    return sorted(blocks)


def _day_list(days: Sequence[date]) -> str:
    # Literals from Python dates, never from input: safe to inline, and both backends
    # bind an array parameter differently.
    return ", ".join(f"'{day.isoformat()}'" for day in sorted(set(days)))


class Eraser:
    """Runs erasures against one store; `say` hears progress. `topology`: one server or a
    cluster; None asks the store."""

    def __init__(
        self, store: Store, say: Callable[[str], None] = lambda _: None,
        topology: Topology | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.say = say
        self.topology = topology or topology_of(store)

    def _count(self, table: str, where: str, params: dict[str, str]) -> int:
        rows = self.store.query(f"SELECT count() AS n FROM {table} WHERE {where}", params)
        return int(rows[0]["n"])

    def _days(self, table: str, day: str, where: str, params: dict[str, str]) -> set[date]:
        rows = self.store.query(f"SELECT DISTINCT {day} AS day FROM {table} WHERE {where}", params)
        return {row["day"] for row in rows}

    def _delete(self, table: str, where: str, params: dict[str, str] | None = None) -> None:
        self.store.execute(
            f"ALTER TABLE {self.topology.mutable(table)} DELETE WHERE {where}{MUTATION}", params
        )

    def erase(
        self, customer_ids: Sequence[str], salt: str, ledger: ErasureLedger
    ) -> list[ErasureOutcome]:
        """Remove every row of these customers; recompute what aggregates them. The
        ledger rows are the caller's to write (`record`), once the erasure is done."""
        outcomes = []
        event_days: set[date] = set()
        ingest_days: set[date] = set()
        rejection_days: set[date] = set()
        for customer_id in customer_ids:
            removed: dict[str, int] = {}
            by_customer = "customer_id = {customer:String}"
            params = {"customer": customer_id}
            event_days |= self._days("touchpoints", "toDate(occurred_at)", by_customer, params)
            ingest_days |= self._days("touchpoints", "toDate(_ingested_at)", by_customer, params)
            for table in CUSTOMER_TABLES + REFRESHED_CUSTOMER_TABLES:
                removed[table] = self._count(table, by_customer, params)
            where, dl_params = dead_letter_match(customer_id)
            removed["dead_letters"] = self._count("dead_letters", where, dl_params)
            if removed["dead_letters"]:
                rejection_days |= self._days("dead_letters", "toDate(received_at)", where,
                                             dl_params)  # fmt: skip
                self._delete("dead_letters", where, dl_params)
            for table in CUSTOMER_TABLES:
                if removed[table]:
                    self._delete(table, by_customer, params)
            if self.topology.clustered:  # see the module's docstring, step 4
                for table in REFRESHED_CUSTOMER_TABLES:
                    if removed[table]:
                        self._delete(table, by_customer, params)
            hashed = customer_hash(salt, customer_id)
            outcomes.append(ErasureOutcome(customer_id, hashed, removed, hashed in ledger.hashes))
            self.say(f"{customer_id}: {sum(removed.values()):,} rows removed")
        self._recompute(sorted(event_days), sorted(ingest_days), sorted(rejection_days))
        if any(o.rows_removed for o in outcomes):
            self._refresh()
        return outcomes

    def _recompute(
        self, event_days: list[date], ingest_days: list[date], rejection_days: list[date]
    ) -> None:
        for days, aggregates in (
            (event_days, TOUCHPOINT_AGGREGATES),
            (ingest_days, (INGESTED_AGGREGATE,)),
            (rejection_days, (REJECTIONS_AGGREGATE,)),
        ):
            if not days:
                continue
            listed = _day_list(days)
            for aggregate in aggregates:
                self._delete(aggregate.table, f"{aggregate.key_day} IN ({listed})")
                where = f"{aggregate.source_day} IN ({listed})"
                self.store.execute(
                    f"INSERT INTO {aggregate.table} {self.topology.insert_settings}"
                    f"{aggregate.select.format(days=where)}"
                )
        if event_days:
            self._recompute_blocks(blocks_of(event_days))
        self.say(
            f"aggregates recomputed for {len(event_days)} event day(s), {len(ingest_days)} "
            f"ingestion day(s), {len(rejection_days)} rejection day(s)"
        )

    def _recompute_blocks(self, blocks: list[tuple[int, date]]) -> None:
        """journeys_active_block_parts (0005): its blocks span up to 64 days, so a day's
        journeys are in seven blocks, each recomputed from its whole span."""
        listed = ", ".join(f"({span}, '{first.isoformat()}')" for span, first in blocks)
        first = min(f for _, f in blocks)
        last = max(f + timedelta(days=s - 1) for s, f in blocks)
        self._delete("journeys_active_block_parts", f"(span_days, first_day) IN ({listed})")
        self.store.execute(
            f"INSERT INTO journeys_active_block_parts {self.topology.insert_settings}"
            "SELECT span_days, "
            "toDate(occurred_at) - toUInt16(toDate(occurred_at)) % span_days AS first_day, "
            "uniqState(journey_id) AS journeys FROM touchpoints "
            "ARRAY JOIN [1, 2, 4, 8, 16, 32, 64] AS span_days "
            f"WHERE toDate(occurred_at) BETWEEN '{first.isoformat()}' AND '{last.isoformat()}' "
            f"GROUP BY span_days, first_day HAVING (span_days, first_day) IN ({listed})"
        )

    def _refresh(self) -> None:
        refresh_views(self.store)

    def record(
        self,
        outcomes: Sequence[ErasureOutcome],
        reason: str,
        request_id: str,
        erased_by: str,
        erased_at: datetime | None = None,
    ) -> None:
        at = erased_at or datetime.now(UTC)
        rows = [ledger_row(o, at, reason, request_id, erased_by) for o in outcomes]
        self.store.insert(LEDGER_TABLE, rows)


def refresh_views(store: Store) -> None:
    """Refresh every refreshable view now and wait for each: their tables then hold what
    their sources hold (an erasure's last step; tests comparing two stores too)."""
    for view in REFRESHABLE_VIEWS:
        store.execute(f"SYSTEM REFRESH VIEW {view}")
    for view in REFRESHABLE_VIEWS:
        store.execute(f"SYSTEM WAIT VIEW {view}")


def load_ledger(store: Store, salt: str | None) -> ErasureLedger:
    """Every erased customer's hash, from the ledger table."""
    rows = store.query(f"SELECT DISTINCT customer_hash FROM {LEDGER_TABLE}")
    return ErasureLedger(salt, {str(row["customer_hash"]) for row in rows})


def ledger_rows(store: Store, request_id: str) -> list[dict[str, object]]:
    """The ledger rows one request wrote (the CLI waits for them when a worker erases)."""
    return store.query(
        f"SELECT customer_hash, erased_at, reason, removed, rows_removed, erased_by "
        f"FROM {LEDGER_TABLE} WHERE request_id = {{request:String}}",
        {"request": request_id},
    )
