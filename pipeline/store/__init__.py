"""ClickHouse storage: one interface, two backends (chdb embedded, clickhouse-connect server)."""

from __future__ import annotations

from pipeline.settings import Settings
from pipeline.store.base import Store, StoreError, TransientStoreError, json_each_row
from pipeline.store.migrations import Migration, apply_migrations, load_migrations


def get_store(settings: Settings) -> Store:
    """The store the settings name: embedded chdb under the data directory, or a server."""
    if settings.clickhouse_mode == "embedded":
        from pipeline.store.embedded import open_embedded

        return open_embedded(settings.clickhouse_dir, settings.clickhouse_database)
    from pipeline.store.server import ServerStore

    return ServerStore(
        settings.clickhouse_url,
        settings.clickhouse_user,
        settings.clickhouse_password.get_secret_value(),
        settings.clickhouse_database,
    )


__all__ = [
    "Migration",
    "Store",
    "StoreError",
    "TransientStoreError",
    "apply_migrations",
    "get_store",
    "json_each_row",
    "load_migrations",
]
