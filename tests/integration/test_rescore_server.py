"""`journeys rescore` on the server path (ServerStore over HTTP, two spawned scoring
processes): the journeys the engine scores offline, and a window that picks whole journeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.journey import DEFAULT_MODEL_PATH, load_score_model
from pipeline.rescore import RescorePlan, rescore
from pipeline.simulate import SimulationConfig, simulate
from pipeline.store.server import ServerStore
from pipeline.stream.offline import offline_rows, write_rows

pytestmark = pytest.mark.integration

END = datetime.now(UTC).replace(microsecond=0) - timedelta(days=90)  # every deadline passed


def toml(version: str) -> str:
    return DEFAULT_MODEL_PATH.read_text().replace('version = "v1"', f'version = "{version}"')


def figures(store: ServerStore, version: str) -> dict[str, tuple[float, str, int, str]]:
    rows = store.query(
        "SELECT journey_id, score, band, touchpoint_count, status FROM journeys FINAL "
        "WHERE model_version = {v:String} AND status != 'retired'",
        {"v": version},
    )
    return {r["journey_id"]: (r["score"], r["band"], r["touchpoint_count"], r["status"])
            for r in rows}  # fmt: skip


def test_rescore_over_http_scores_as_the_engine_does(server_store: ServerStore) -> None:
    config = SimulationConfig(customers=150, days=30, start=END - timedelta(days=30), seed=5)
    now = datetime.now(UTC)
    messages = ((delivery.value, now) for delivery in simulate(config)[0])
    write_rows(server_store, offline_rows(messages, now, load_score_model()))
    outcome = rescore(server_store, RescorePlan(toml("v1-server"), workers=2))
    assert outcome.events > 1000 and not outcome.stopped
    offline = figures(server_store, "v1")
    assert len(offline) > 100
    assert figures(server_store, "v1-server") == offline

    since, until = END - timedelta(days=30), END - timedelta(days=23)
    windowed = rescore(server_store, RescorePlan(toml("v1-week"), since=since, until=until))
    week = figures(server_store, "v1-week")
    assert 0 < len(week) < len(offline) and windowed.events < outcome.events
    assert all(week[j] == offline[j] for j in week)  # whole journeys, scored as before
    touched = server_store.query(
        "SELECT DISTINCT journey_id FROM touchpoints WHERE occurred_at >= {since:String} "
        "AND occurred_at < {until:String}",
        {"since": f"{since:%Y-%m-%d %H:%M:%S}", "until": f"{until:%Y-%m-%d %H:%M:%S}"},
    )
    # every journey with a touchpoint in the week (a touchpoint may still name a journey
    # that a late event merged into another: no journey any more)
    assert {r["journey_id"] for r in touched} & set(offline) <= set(week)
