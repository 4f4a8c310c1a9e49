"""ClickHouse storage: one interface, two backends (chdb embedded, clickhouse-connect server)."""

from __future__ import annotations

from pipeline.settings import Settings
from pipeline.store.base import (
    Store,
    StoreError,
    TransientStoreError,
    json_array_rows,
    json_each_row,
)
from pipeline.store.migrations import Migration, apply_migrations, load_migrations


class EngineMissing(StoreError):
    """Embedded mode without chdb installed: a setup problem, never worth a retry."""


def require_embedded_engine() -> None:
    """Raise EngineMissing, saying how to install chdb or to use a server, when chdb is not
    installed: it is an extra, so that server deployments (the image) do without its 534 MB."""
    try:
        import chdb  # noqa: F401
    except ImportError as exc:
        raise EngineMissing(
            "JOURNEYS_CLICKHOUSE_MODE=embedded needs chdb, the ClickHouse engine in-process, "
            f"which is not installed ({exc}): install the extra with "
            "`pip install 'journey-pipeline[embedded]'` (`make install` does), or use a "
            "ClickHouse server with JOURNEYS_CLICKHOUSE_MODE=server and JOURNEYS_CLICKHOUSE_URL"
        ) from None


def get_store(settings: Settings) -> Store:
    """The store the settings name: embedded chdb under the data directory, or a server."""
    if settings.clickhouse_mode == "embedded":
        require_embedded_engine()
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
    "EngineMissing",
    "Migration",
    "Store",
    "StoreError",
    "TransientStoreError",
    "apply_migrations",
    "get_store",
    "json_array_rows",
    "json_each_row",
    "load_migrations",
    "require_embedded_engine",
]
