"""`journeys rescore` and `journeys diff` on the real stack: a simulated month run live
through the worker (`journeys demo`, real broker, chdb), then rescored from ClickHouse.

* with the live model: the rescore's rows are the worker's rows, journey for journey;
* with a changed model (a broken promise costs twice as much): `journeys diff` shows that
  change and nothing else;
* killed with SIGKILL mid-run and run again: the same rows, none stored twice.

Every command runs as a child process, as an operator runs them: in embedded mode one
process at a time may open the data directory, and each reading of the tables here is a
child process too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.journey import DEFAULT_MODEL_PATH

pytestmark = pytest.mark.integration

LIVE_TOML = DEFAULT_MODEL_PATH.read_text()
PROVENANCE = ("_topic", "_partition", "_offset", "_ingested_at")

# The latest row of each journey and each active signal, written by the worker (`live`) or
# by a rescore, with what differs by construction left out: provenance, the version names
# and (signals only) the row version (pipeline/rescore/books.py).
COMPARE = """
import json
from pipeline.settings import load_settings
from pipeline.store import get_store

store = get_store(load_settings())
VERSION_FREE = ("model_version", "score_model", "_topic", "_partition", "_offset",
                "_ingested_at")

SOURCES = {"live": "_topic != 'rescore'", "rescore": "_topic = 'rescore'", "any": "1"}

def journeys(version, source):
    rows = store.query(
        "SELECT * FROM journeys WHERE model_version = {v:String} AND " + SOURCES[source]
        + " ORDER BY journey_id, version DESC, _ingested_at DESC LIMIT 1 BY journey_id",
        {"v": version})
    return {r["journey_id"]: {k: str(v) for k, v in r.items() if k not in VERSION_FREE}
            for r in rows if not r["is_deleted"]}

def signals(version, source):
    rows = store.query(
        "SELECT * FROM journey_signals WHERE model_version = {v:String} AND " + SOURCES[source]
        + " ORDER BY signal_id, version DESC, _ingested_at DESC LIMIT 1 BY signal_id",
        {"v": version})
    return {r["signal_id"]: {k: str(v) for k, v in r.items()
                             if k not in VERSION_FREE and k != "version"}
            for r in rows if r["active"]}

def raw_count(table, version):
    return store.query(f"SELECT count() AS n FROM {table} WHERE model_version = {{v:String}}",
                       {"v": version})[0]["n"]
"""


def env_for(data: Path, bootstrap_servers: str) -> dict[str, str]:
    return {
        **os.environ,
        "JOURNEYS_DATA_DIR": str(data),
        "JOURNEYS_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "JOURNEYS_CLICKHOUSE_DATABASE": "journeys_demo",
    }


def journeys(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    command = [sys.executable, "-c", "from pipeline.cli import main; main()", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"journeys {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def in_store(env: dict[str, str], code: str) -> Any:
    """Run `code` (after COMPARE's helpers) in a child process; it prints JSON."""
    script = COMPARE + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def model_file(tmp_path: Path, version: str, **impacts: int) -> Path:
    text = LIVE_TOML.replace('version = "v1"', f'version = "{version}"')
    for name, value in impacts.items():
        before = next(line for line in text.splitlines() if line.startswith(f"{name} = "))
        text = text.replace(before, f"{name} = {value}")
    path = tmp_path / f"{version}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def live_month(tmp_path_factory: pytest.TempPathFactory, bootstrap_servers: str) -> dict[str, Any]:
    """A simulated month run live through the worker into its own data directory."""
    tmp = tmp_path_factory.mktemp("rescore")
    env = env_for(tmp / "data", bootstrap_servers)
    journeys(env, "demo", "--customers", "300", "--seed", "11", "-o", str(tmp / "live.html"),
             "--timeout", "240")  # fmt: skip
    return {"env": env, "tmp": tmp}


def test_rescoring_with_the_live_model_gives_the_live_rows(live_month: dict[str, Any]) -> None:
    """The live model under a version of its own (`v1-again`: its rows apart from the
    worker's), then under its own version `v1`, where its rows replace the worker's rows,
    which must change nothing."""
    env, tmp = live_month["env"], live_month["tmp"]
    live_rows = in_store(
        env, """print(json.dumps([journeys("v1", "live"), signals("v1", "live")]))"""
    )
    assert len(live_rows[0]) > 200 and len(live_rows[1]) > 100
    journeys(env, "rescore", "--model", str(model_file(tmp, "v1-again")))
    again = in_store(env, """
        print(json.dumps([journeys("v1-again", "rescore"), signals("v1-again", "rescore")]))
    """)  # fmt: skip
    assert again[0].keys() == live_rows[0].keys()
    for journey_id, row in live_rows[0].items():
        assert again[0][journey_id] == row, journey_id
    assert again[1] == live_rows[1]

    live = tmp / "live.toml"
    live.write_text(LIVE_TOML)
    assert "Rescored with model v1" in journeys(env, "rescore", "--model", str(live))
    after = in_store(env, """print(json.dumps([journeys("v1", "any"), signals("v1", "any")]))""")
    assert after == live_rows


def test_a_changed_model_shows_in_the_diff(live_month: dict[str, Any]) -> None:
    env, tmp = live_month["env"], live_month["tmp"]
    changed = model_file(tmp, "v2", promise_broken=-30)
    journeys(env, "rescore", "--model", str(changed))
    said = journeys(env, "diff", "v1", "v2", "-o", str(tmp / "diff.html"))
    assert "Model v2 against v1" in said and "Journeys that change band" in said
    html = (tmp / "diff.html").read_text()
    assert "What model v2 changes" in html and "score model v2" in html
    diff = in_store(env, """
        from pipeline.report.diff import load_diff
        from pipeline.report.versions import shown_model
        d = load_diff(store, shown_model(store, "v1"), shown_model(store, "v2"))
        print(json.dumps({
            "old": [[*k, v[0]] for k, v in d.old.breakdowns.items()],
            "new": [[*k, v[0]] for k, v in d.new.breakdowns.items()],
            "changes": [[c.old, c.new, c.journeys] for c in d.changes],
            "wom": [d.old.word_of_mouth, d.new.word_of_mouth],
            "only": [d.only_old, d.only_new]}))
    """)  # fmt: skip
    old = {tuple(r[:3]): r[3] for r in diff["old"]}
    new = {tuple(r[:3]): r[3] for r in diff["new"]}
    assert old.keys() == new.keys()
    broken = [k for k in old if k[2] == "promise_broken"]
    assert broken, "the month broke no promise"
    for key, lost in old.items():
        assert new[key] == pytest.approx(2 * lost if key in broken else lost), key
    worse = {("good", "neutral"), ("good", "poor"), ("neutral", "poor")}
    assert diff["changes"] and all((a, b) in worse for a, b, _ in diff["changes"])
    assert diff["wom"][1] < diff["wom"][0]
    assert diff["only"] == [0, 0]


def test_the_diff_of_a_window_takes_the_journeys_under_way_in_it(
    live_month: dict[str, Any],
) -> None:
    """A week in the middle of the month rescored with a changed model (`rescore --since
    --until`), then diffed over the same week: both versions narrowed to the journeys
    under way in it, and over a window holding the whole month the figures of no window."""
    env, tmp = live_month["env"], live_month["tmp"]
    span = in_store(env, """
        r = store.query("SELECT min(started_at) AS a, max(last_event_at) AS b FROM journeys "
                        "FINAL WHERE model_version = 'v1' AND status != 'retired'")[0]
        print(json.dumps([r["a"].isoformat(), r["b"].isoformat()]))
    """)  # fmt: skip
    start, end = (datetime.fromisoformat(t) for t in span)
    since = (start + (end - start) / 3).replace(microsecond=0)
    until = since + timedelta(days=7)
    window = ["--since", since.isoformat(), "--until", until.isoformat()]
    journeys(env, "rescore", "--model", str(model_file(tmp, "v2w", promise_broken=-30)),
             *window)  # fmt: skip
    said = journeys(env, "diff", "v1", "v2w", *window)
    assert "Model v2w against v1" in said and "under way" in " ".join(said.split())
    whole = [(start - timedelta(days=1)).isoformat(), (end + timedelta(days=1)).isoformat()]
    found = in_store(env, f"""
        from datetime import datetime
        from pipeline.report.diff import Window, load_diff
        from pipeline.report.versions import shown_model
        def figures(d):
            return {{"bands": [d.old.bands, d.new.bands],
                    "lost": [sorted([*k, v[0], v[1]] for k, v in d.old.breakdowns.items()),
                             sorted([*k, v[0], v[1]] for k, v in d.new.breakdowns.items())],
                    "changes": [[c.old, c.new, c.journeys] for c in d.changes],
                    "same": d.same_band, "only": [d.only_old, d.only_new]}}
        v1 = shown_model(store, "v1")
        week = Window(datetime.fromisoformat("{since.isoformat()}"),
                      datetime.fromisoformat("{until.isoformat()}"))
        whole = Window(*(datetime.fromisoformat(t) for t in {whole!r}))
        under_way = store.query(
            "SELECT count() AS n FROM journeys FINAL WHERE model_version = 'v1' AND "
            "status != 'retired' AND started_at < {{u:DateTime64(3, 'UTC')}} AND "
            "last_event_at >= {{s:DateTime64(3, 'UTC')}}",
            {{"s": "{since:%Y-%m-%d %H:%M:%S}", "u": "{until:%Y-%m-%d %H:%M:%S}"}})[0]["n"]
        print(json.dumps({{
            "week": figures(load_diff(store, v1, shown_model(store, "v2w"), week)),
            "all": figures(load_diff(store, v1, v1)),
            "whole": figures(load_diff(store, v1, v1, whole)),
            "under_way": under_way,
            "journeys": store.query("SELECT count() AS n FROM journeys FINAL WHERE "
                                    "model_version = 'v1' AND status != 'retired'")[0]["n"]}}))
    """)  # fmt: skip
    week = found["week"]
    assert 0 < found["under_way"] < found["journeys"]
    assert sum(week["bands"][0].values()) == found["under_way"]
    # every journey of the new version under way in the week was rescored from v1's
    assert week["only"][1] == 0
    assert sum(week["bands"][1].values()) == found["under_way"] - week["only"][0]
    old_lost = sum(r[3] for r in week["lost"][0] if r[2] == "promise_broken")
    new_lost = sum(r[3] for r in week["lost"][1] if r[2] == "promise_broken")
    assert old_lost > 0 and new_lost > old_lost
    assert found["whole"] == found["all"]


def test_a_killed_rescore_resumes_and_stores_each_row_once(live_month: dict[str, Any]) -> None:
    env, tmp = live_month["env"], live_month["tmp"]
    command = [sys.executable, "-c", "from pipeline.cli import main; main()", "rescore"]
    partial = None
    for attempt, delay in enumerate((6.0, 3.0, 10.0, 15.0)):
        version = f"v1-resumed-{attempt}"
        path = model_file(tmp, version)
        child = subprocess.Popen([*command, "--model", str(path), "--shards", "400"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        done = in_store(env, f"""
            rows = store.query("SELECT shard, shards FROM rescore_progress FINAL "
                               "WHERE model_version = '{version}'")
            print(json.dumps([sum(r["shard"] >= 0 for r in rows),
                              max((r["shards"] for r in rows), default=0)]))
        """)  # fmt: skip
        if 0 < done[0] < done[1]:
            partial = (version, path)
            break
    assert partial, "no attempt killed the rescore between two shards"
    version, path = partial
    said = journeys(env, "rescore", "--model", str(path), "--shards", "400")
    assert "resumed a run" in said
    found = in_store(env, f"""
        print(json.dumps({{"live": [journeys("v1", "any"), signals("v1", "any")],
                          "resumed": [journeys("{version}", "rescore"),
                                      signals("{version}", "rescore")],
                          "raw": [raw_count("journeys", "{version}"),
                                  raw_count("journey_signals", "{version}")]}}))
    """)  # fmt: skip
    assert found["resumed"] == found["live"]
    # each journey and signal row stored once: the redone shard's inserts were dropped
    assert found["raw"] == [len(found["resumed"][0]), len(found["resumed"][1])]


def test_sigterm_stops_a_rescore_after_a_shard_with_exit_0(live_month: dict[str, Any]) -> None:
    env, tmp = live_month["env"], live_month["tmp"]
    path = model_file(tmp, "v1-stopped")
    command = [sys.executable, "-c", "from pipeline.cli import main; main()", "rescore"]
    child = subprocess.Popen([*command, "--model", str(path), "--shards", "400"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(6.0)
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    assert "Stopped:" in stdout or "Rescored with model v1-stopped" in stdout, stdout + stderr
    if "Stopped:" in stdout:
        assert "run the same command again" in stdout
        assert "resumed a run" in journeys(env, "rescore", "--model", str(path), "--shards", "400")
