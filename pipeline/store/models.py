"""The score models the tables hold rows of (`score_models`, migration 0007).

The worker records its model as `live` when it starts; `journeys rescore` records the model
it stores as `rescore`, with the model file, so that one version never names two models.
The dashboards' model variable and the report's default read the live version from here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pipeline.store.base import Store

LIVE = "live"
RESCORE = "rescore"

# The most recently started live model first; then the others, by version.
VERSIONS_SQL = """
SELECT model_version FROM score_models FINAL
GROUP BY model_version
ORDER BY max(if(role = 'live', registered_at, toDateTime64(0, 3, 'UTC'))) DESC, model_version
"""


def model_sha256(toml_text: str) -> str:
    return hashlib.sha256(toml_text.encode()).hexdigest()


def record_model(store: Store, version: str, role: str, toml_text: str) -> None:
    """Say that rows of `version`, scored with the model `toml_text`, are (being) stored."""
    store.insert(
        "score_models",
        [{
            "model_version": version,
            "role": role,
            "model_sha256": model_sha256(toml_text),
            "model_toml": toml_text,
            "registered_at": datetime.now(UTC),
        }],
    )  # fmt: skip


def recorded_sha256(store: Store, version: str) -> dict[str, str]:
    """role -> the sha256 of the model file recorded for `version` (empty: never recorded)."""
    rows = store.query(
        "SELECT role, argMax(model_sha256, registered_at) AS sha FROM score_models "
        "WHERE model_version = {version:String} GROUP BY role",
        {"version": version},
    )
    return {str(r["role"]): str(r["sha"]) for r in rows}


def model_versions(store: Store) -> list[str]:
    """The versions recorded, the live one first (`VERSIONS_SQL`)."""
    return [str(r["model_version"]) for r in store.query(VERSIONS_SQL)]


def live_version(store: Store) -> str | None:
    """The version the most recently started worker scores with, if any worker recorded one."""
    rows = store.query(
        "SELECT argMax(model_version, registered_at) AS version, count() AS n "
        "FROM score_models FINAL WHERE role = 'live'"
    )
    return str(rows[0]["version"]) if rows and int(rows[0]["n"]) else None
