"""The compiled engine is what the install gives, and it computes what its source computes.

`make install` compiles `pipeline.compiled.MODULES` with Cython (setup.py). These tests run
after it: the engine must load compiled (an install that silently fell back to the source
would pass every other test while the worker runs slower), and a simulated month with its
duplicates, disorder, malformed messages and deadlines must give byte-identical output
compiled and with JOURNEYS_PURE_PYTHON=1 (every row, message, dead letter, book and counter).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from pipeline import compiled

REPO = Path(__file__).resolve().parents[2]


def test_the_installed_engine_is_compiled() -> None:
    assert compiled.ENGINE.source_modules == [], compiled.ENGINE.describe()


def run_digest(**env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.engine_digest", "3000", "400"],
        cwd=REPO,
        env=os.environ | {"PYTHONHASHSEED": "0"} | env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return dict(orjson.loads(done.stdout))


def test_compiled_and_source_engines_give_identical_output() -> None:
    fast = run_digest()
    source = run_digest(JOURNEYS_PURE_PYTHON="1")
    assert str(fast["assembly"]).endswith(".so"), fast["engine"]
    assert str(source["assembly"]).endswith(".py"), source["engine"]
    assert fast["events"] == source["events"] and int(str(fast["events"])) > 25_000
    counts = fast["counts"]
    assert isinstance(counts, dict) and counts["rejected"] and counts["duplicates"]
    assert counts["signals_retracted"] and counts["ticks"]  # late events, deadlines fired
    assert fast["counts"] == source["counts"]
    assert fast["rejected"] == source["rejected"]
    assert fast["digest"] == source["digest"]
