"""Numbered, forward-only migrations: `NNNN_name.sql` files beside this module.

Applied in order and recorded in `schema_migrations`; a migration already recorded is
skipped, so running twice changes nothing. A recorded migration whose file has since been
edited is an error: a published migration is never changed, a new one is added instead.
That includes comments: 0001's header still names the product notes' "ClickHouse tables"
section, whose content is now docs/architecture.md#public-surfaces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pipeline.store.base import Store, StoreError, split_statements

MIGRATIONS_DIR = Path(__file__).parent
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise StoreError(f"migration file {path.name!r} is not named NNNN_lower_snake.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two migration files share a version number: {sorted(versions)}")
    return migrations


class Layout(Protocol):
    """How the migrations reach the database: as written (one server, or chdb), or rendered
    for a sharded, replicated cluster (pipeline/store/cluster.py)."""

    clustered: bool

    def setup(self) -> list[str]:
        """What must exist before the ledger is read: the ledger itself, at least."""

    def statements(self, migration: Migration) -> list[str]:
        """The statements that apply `migration` in this layout."""


class SingleNode:
    clustered = False

    def setup(self) -> list[str]:
        return [LEDGER_DDL]

    def statements(self, migration: Migration) -> list[str]:
        return migration.statements


SINGLE_NODE = SingleNode()


def applied_migrations(store: Store, layout: Layout = SINGLE_NODE) -> dict[int, str]:
    for statement in layout.setup():
        store.execute(statement)
    rows = store.query("SELECT version, checksum FROM schema_migrations FINAL")
    return {int(r["version"]): str(r["checksum"]) for r in rows}


def _check_ledger(store: Store, layout: Layout, pending: list[Migration]) -> None:
    """Refuse to apply a migration in the other layout than the database's: single-node
    DDL on one node of a cluster would create plain tables beside Distributed ones. The
    worker applies migrations at start too, which stays a no-op on an up-to-date cluster."""
    rows = store.query(
        "SELECT engine FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'schema_migrations'"
    )
    engine = str(rows[0]["engine"]) if rows else ""
    if engine.startswith("Replicated") == layout.clustered:
        return
    waiting = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
    if layout.clustered:
        raise StoreError(
            f"database {store.database} was migrated for one server (schema_migrations is "
            f"{engine}); a cluster layout needs a database of its own, or keep migrating "
            "this one without --cluster"
        )
    raise StoreError(
        f"database {store.database} is laid out for a cluster (schema_migrations is {engine})"
        f" and {waiting} is not applied yet: apply it with `journeys migrate --cluster NAME`"
    )


def apply_migrations(
    store: Store,
    migrations: list[Migration] | None = None,
    say: Callable[[str], None] = lambda _: None,
    layout: Layout = SINGLE_NODE,
) -> list[Migration]:
    """Apply what is not applied yet, in order; return the migrations applied now."""
    migrations = load_migrations() if migrations is None else migrations
    done = applied_migrations(store, layout)
    pending = [m for m in migrations if m.version not in done]
    if pending:
        _check_ledger(store, layout, pending)
    applied = []
    for migration in migrations:
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise StoreError(
                    f"migration {migration.version:04d}_{migration.name} was edited after it was "
                    "applied; add a new migration instead of changing a published one"
                )
            continue
        say(f"applying {migration.version:04d}_{migration.name}")
        for statement in layout.statements(migration):
            store.execute(statement)
        store.insert(
            "schema_migrations",
            [{
                "version": migration.version,
                "name": migration.name,
                "checksum": migration.checksum,
                "applied_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            }],
        )  # fmt: skip
        applied.append(migration)
    return applied
