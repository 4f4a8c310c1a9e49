"""A data directory holding a scored month, for the tests that run a command over it end to
end (`journeys report`, `journeys calibrate`).

The simulator's company, scored by the worker's core (`pipeline.stream.offline`, every
message taken in at the period's end) and stored in chdb by a process of its own: chdb
serves one data directory per process, and the commands under test open it in theirs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

# argv[1]: SimulationConfig's fields as JSON; the month starts on 2026-03-01.
WRITE_THE_MONTH = """\
import json, sys
from datetime import UTC, datetime
from pipeline.journey import load_score_model
from pipeline.settings import load_settings
from pipeline.simulate import SimulationConfig, simulate
from pipeline.store import apply_migrations, get_store
from pipeline.stream.offline import offline_rows, write_rows
store = get_store(load_settings())
apply_migrations(store)
config = SimulationConfig(start=datetime(2026, 3, 1, tzinfo=UTC), **json.loads(sys.argv[1]))
messages = ((d.value, config.end) for d in simulate(config)[0])
write_rows(store, offline_rows(messages, config.end, load_score_model()))
store.close()
"""


def write_scored_month(env: Mapping[str, str], **config: object) -> None:
    """Store a scored month in the data directory of `env` (its JOURNEYS_DATA_DIR);
    `config`: the SimulationConfig's fields, such as customers and survey_share."""
    subprocess.run(
        [sys.executable, "-c", WRITE_THE_MONTH, json.dumps(config)],
        env=dict(env),
        check=True,
        timeout=300,
    )
