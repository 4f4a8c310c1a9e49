"""Issue 22 and `journeys rescore`: a customer erased while a rescore runs is not stored again
by it. The rescore stages its input before its first shard, so the erasure's deletes do not
reach the copy it scores; the ledger read before each shard's insert does. On chdb alone,
in-process (one shard at a time, the rescore's own path with `workers=1`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.journey import DEFAULT_MODEL_PATH, load_score_model
from pipeline.rescore import RescoreError, RescorePlan, rescore
from pipeline.rescore.run import Progress, _staged
from pipeline.simulate import SimulationConfig, simulate
from pipeline.store.embedded import EmbeddedStore
from pipeline.store.erase import Eraser, load_ledger
from pipeline.stream.offline import offline_rows, write_rows

pytestmark = pytest.mark.integration
SALT = "test-salt-0123456789abcdef"


def count(store: EmbeddedStore, table: str, version: str, customers: list[str] | None) -> int:
    """Rows of `version` in `table`, of these customers (None: of all)."""
    listed = ", ".join(f"'{c}'" for c in customers or ())  # simulated ids: CUST-0000001
    which = f" AND customer_id IN ({listed})" if customers is not None else ""
    rows = store.query(f"SELECT count() AS n FROM {table} WHERE model_version = {{v:String}}"
                       f"{which}", {"v": version})  # fmt: skip
    return int(rows[0]["n"])


def test_a_customer_erased_during_a_rescore_is_not_stored_again(
    fresh_store: EmbeddedStore,
) -> None:
    config = SimulationConfig(customers=60, seed=22, start=datetime(2026, 3, 1, tzinfo=UTC))
    messages = ((d.value, config.end) for d in simulate(config)[0])
    write_rows(fresh_store, offline_rows(messages, config.end, load_score_model()))
    plan = RescorePlan(DEFAULT_MODEL_PATH.read_text().replace('version = "v1"', 'version = "v1e"'),
                       workers=1, shards=4)  # fmt: skip
    erased: list[str] = []

    def erase_after_the_first_shard(progress: Progress) -> None:
        if progress.shards_done != 1 or erased:
            return
        staged = _staged(plan)  # customers whose books are all in shards still to come
        rows = fresh_store.query(
            f"SELECT customer_id FROM {staged} GROUP BY customer_id HAVING min(shard) > "
            f"(SELECT min(shard) FROM {staged}) ORDER BY count() DESC, customer_id LIMIT 3"
        )
        erased.extend(str(r["customer_id"]) for r in rows)
        eraser = Eraser(fresh_store)
        eraser.record(eraser.erase(erased, SALT, load_ledger(fresh_store, SALT)), "", "r1", "t")

    outcome = rescore(fresh_store, plan, on_progress=erase_after_the_first_shard,
                      erasure_salt=SALT)  # fmt: skip
    assert len(erased) == 3 and not outcome.stopped
    assert outcome.journeys > 0
    for table in ("journeys", "journey_signals"):
        assert count(fresh_store, table, "v1e", erased) == 0, table
    assert count(fresh_store, "journeys", "v1e", None) == outcome.journeys
    # A ledger of erased customers and no salt to recognise them: refused, nothing stored.
    other = RescorePlan(plan.model_toml.replace('"v1e"', '"v1f"'), workers=1, shards=4)
    with pytest.raises(RescoreError, match="JOURNEYS_ERASURE_SALT is not set"):
        rescore(fresh_store, other)
    assert count(fresh_store, "journeys", "v1f", None) == 0
