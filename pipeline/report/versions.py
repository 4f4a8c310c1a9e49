"""Which score model's rows a report, a diff or a panel shows: a version the tables hold.

A version's rows are those the worker scored live with it, or a `journeys rescore` stored;
both record the model file in `score_models` (pipeline.store.models), which gives the
report the front desk and the bands the version was scored with.
"""

from __future__ import annotations

import tomllib

from pipeline.journey import ScoreModel, ScoreModelError, load_score_model, parse_score_model
from pipeline.store import Store
from pipeline.store.models import live_version, model_versions


class UnknownModelVersion(ValueError):
    """The tables hold no rows of the model version asked for."""


def recorded_model(store: Store, version: str) -> ScoreModel | None:
    """The model file recorded for `version` (the latest recording), parsed; None if none."""
    rows = store.query(
        "SELECT argMax(model_toml, registered_at) AS toml, count() AS n FROM score_models "
        "WHERE model_version = {version:String}",
        {"version": version},
    )
    if not rows or not int(rows[0]["n"]):
        return None
    try:
        return parse_score_model(tomllib.loads(str(rows[0]["toml"])))
    except (tomllib.TOMLDecodeError, ScoreModelError) as exc:
        raise UnknownModelVersion(f"model version {version!r}: its recorded file {exc}") from None


def shown_model(
    store: Store, version: str | None = None, configured: ScoreModel | None = None
) -> ScoreModel:
    """The model to show: `version`, else the live one the worker recorded, else the
    configured model (`configured`, default v1) when no worker recorded one yet."""
    configured = configured or load_score_model()
    wanted = version or live_version(store) or configured.version
    model = recorded_model(store, wanted)
    if model is not None:
        return model
    if wanted == configured.version:
        return configured
    known = ", ".join(model_versions(store)) or "none recorded"
    raise UnknownModelVersion(
        f"model version {wanted!r} is not in the tables (versions: {known}): the worker "
        "records its live model when it starts, `journeys rescore` the model it stores"
    )
