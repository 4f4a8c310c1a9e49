"""`journeys demo`: the main job on embedded defaults, end to end.

Local broker -> migrate -> worker (`journeys run`, a child process) -> a simulated month of a
company -> wait until the worker committed everything -> stop the worker -> report + summary.

The demo keeps to names of its own (database `journeys_demo`, topics `demo.*`, worker id
`journeys-demo`) and resets them at each start, so it never touches other data and a second
run shows the same story. chdb allows one process per data directory: the worker owns it
while it runs, so this process opens the store only after the worker stopped, and resets it
in a short child process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from pipeline.cli.common import console, errors_as_exit, fail, out, say, settings_or_exit
from pipeline.cli.kafka import local_broker
from pipeline.kafka import BrokerAlreadyRunning, LocalBrokerError
from pipeline.kafka.local import free_port
from pipeline.settings import Settings, load_settings
from pipeline.simulate import (
    DEFAULT_PRESET,
    Pacer,
    SimulationConfig,
    SimulationConfigError,
    default_start,
    parse_breakdowns,
    simulate,
)
from pipeline.simulate.backlog import Backlog, delete_topics
from pipeline.simulate.send import ensure_topic, send_to_kafka
from pipeline.store import StoreError

DEMO: dict[str, Any] = {
    "clickhouse_mode": "embedded",
    "clickhouse_database": "journeys_demo",
    "topic_touchpoints": "demo.touchpoints",
    "topic_dead_letters": "demo.touchpoints.dlq",
    "topic_scores": "demo.journeys.scores",
    "topic_alerts": "demo.journeys.alerts",
    "topic_routed": "demo.touchpoints.routed",
    "worker_id": "journeys-demo",
    # Journey state in memory: every demo starts from fresh topics, and RocksDB files under
    # data_dir/worker (shared by every worker id) would outlive the topics they mirror.
    "worker_store": "memory",
    # A caught-up partition gets a wall-clock tick soon, so the last deadlines fire quickly.
    "clock_idle_seconds": 2.0,
}


def demo_settings(bootstrap_servers: str) -> tuple[Settings, dict[str, str]]:
    """The demo's settings, and the same as environment variables for its child processes.

    The worker's web server gets a free port, so a worker already running on the default
    one (or a test suite's) cannot stop the demo's from starting.
    """
    values = {**DEMO, "kafka_bootstrap_servers": bootstrap_servers, "worker_web_port": free_port()}
    env = {**os.environ, **{f"JOURNEYS_{k.upper()}": str(v) for k, v in values.items()}}
    return load_settings(**values), env


def reset_store() -> None:
    """Drop and re-create the demo database (run in a child process: see the module doc)."""
    from pipeline.store import apply_migrations, get_store
    from pipeline.store.embedded import EmbeddedStore

    settings = load_settings()
    store = get_store(settings)
    if isinstance(store, EmbeddedStore):
        store.drop_database()
        store = get_store(settings)
    apply_migrations(store)


def child(*args: str) -> list[str]:
    """A `journeys` command line in this interpreter (no PATH lookup)."""
    return [sys.executable, "-c", "from pipeline.cli import main; main()", *args]


def start_broker(settings: Settings) -> str:
    if "kafka_bootstrap_servers" in settings.model_fields_set:
        say(f"using the configured Kafka at {settings.kafka_bootstrap_servers}")
        return settings.kafka_bootstrap_servers
    broker = local_broker(settings)
    with errors_as_exit(LocalBrokerError):
        try:
            state = broker.start(say=say)
        except BrokerAlreadyRunning:
            state = broker.state()  # type: ignore[assignment]
    say(f"Kafka broker at {state.bootstrap_servers} (pid {state.pid})")
    return state.bootstrap_servers


def reset(settings: Settings, env: dict[str, str]) -> None:
    topics = [
        settings.topic_touchpoints,
        settings.topic_dead_letters,
        settings.topic_scores,
        settings.topic_alerts,
        settings.topic_routed,
        f"{settings.worker_id}-",
    ]
    deleted = delete_topics(settings.bootstrap_servers, topics, **settings.kafka_client_options())
    if deleted:
        say(f"removed the previous demo's {len(deleted)} topics")
        time.sleep(2)  # topic deletion is asynchronous in the broker
    code = "from pipeline.cli.demo import reset_store; reset_store()"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        fail(f"could not reset the demo database: {done.stderr.strip()[-500:]}")
    say(f"migrated ClickHouse (chdb) database {settings.clickhouse_database}")
    ensure_topic(
        settings.bootstrap_servers,
        settings.topic_touchpoints,
        settings.topic_partitions,
        **settings.kafka_client_options(),
    )


def start_worker(settings: Settings, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    log = settings.data_dir / "demo-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as stream:
        worker = subprocess.Popen(child("run"), env=env, stdout=stream, stderr=subprocess.STDOUT)
    say(f"worker started (pid {worker.pid}); log: {log}")
    return worker, log


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            # Offsets are committed and rows stored by now: a worker slow to shut down
            # loses nothing when it is killed.
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    say(f"worker stopped (exit {worker.returncode})")


def bar() -> Progress:
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), console=console)


def wait_processed(
    settings: Settings, worker: subprocess.Popen[bytes], log: Path, timeout: float
) -> int:
    """Until the worker committed (so stored) every touchpoint sent, every event it re-keyed,
    and the idle clock ticks it sent itself once caught up, which fire the last deadlines.

    Ticks keep arriving while the worker idles, so its re-key/tick topic is never "empty":
    the waits compare committed offsets with end offsets seen at an earlier moment.
    """
    options = settings.kafka_client_options()
    inbound = Backlog(
        settings.bootstrap_servers, settings.worker_id, [settings.topic_touchpoints], **options
    )
    routed = Backlog(
        settings.bootstrap_servers, settings.worker_id, [settings.topic_routed], **options
    )
    deadline = time.monotonic() + timeout
    try:
        with bar() as progress:
            task = progress.add_task("processing", total=None)

            def until(done: Callable[[], bool], what: str) -> None:
                while not done():
                    if worker.poll() is not None:
                        fail(f"the worker exited with {worker.returncode}; see {log}")
                    if time.monotonic() > deadline:
                        fail(f"{what} not done after {timeout:.0f}s; see {log}")
                    time.sleep(0.5)

            def touchpoints_done() -> bool:
                state = inbound.state()
                progress.update(task, completed=state.processed, total=max(state.total, 1))
                return state.total > 0 and state.remaining == 0

            until(touchpoints_done, "touchpoints")
            rerouted = routed.state().ends
            until(lambda: routed.state().reached(rerouted), "re-keyed touchpoints")
            # Idle ticks move every partition's clock to now and fire the last deadlines:
            # wait for a round of them to be processed, then for their results to be stored.
            wanted = worker_counter(settings, "ticks") + settings.topic_partitions
            until(lambda: worker_counter(settings, "ticks") >= wanted, "clock ticks")
            ticked = routed.state().ends
            until(lambda: routed.state().reached(ticked), "stored clock ticks")
            return worker_counter(settings, "ticks")
    finally:
        inbound.close()
        routed.close()


def worker_counter(settings: Settings, name: str) -> int:
    """One of the worker's counters, from its web server's /metrics.json (-1: unreachable)."""
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics.json"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(json.load(response).get(name, 0))
    except (OSError, ValueError):
        return -1


def send_company(settings: Settings, config: SimulationConfig) -> list[str]:
    deliveries, summary = simulate(config)
    with bar() as progress:
        task = progress.add_task("sending", total=len(deliveries))
        send_to_kafka(
            deliveries,
            settings.bootstrap_servers,
            settings.topic_touchpoints,
            Pacer(),
            lambda n: progress.advance(task, n),
            **settings.kafka_client_options(),
        )
    return summary.lines()


def report_and_summary(settings: Settings, output: Path) -> list[str]:
    from pipeline.report import summary_lines, write_report
    from pipeline.store import get_store

    with errors_as_exit(StoreError):
        data = write_report(get_store(settings), output)
    return summary_lines(data)


@click.command()
@click.option("--customers", default=2000, show_default=True, help="Customers of the company.")
@click.option("--days", default=30, show_default=True, help="Simulated period in days.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same company.")
@click.option("--breakdown", "breakdowns", multiple=True, help="See `journeys simulate`.")
@click.option("--output", "-o", default="report.html", show_default=True, help="Report file.")
@click.option("--timeout", default=240.0, show_default=True, help="Seconds to wait for the worker.")
@click.option("--stop/--keep-running", default=False, help="Stop the local broker at the end.")
def demo(
    customers: int,
    days: int,
    seed: int,
    breakdowns: tuple[str, ...],
    output: str,
    timeout: float,
    stop: bool,
) -> None:
    """Run the whole pipeline on a simulated company and show where its journeys break down."""
    started = time.monotonic()
    with errors_as_exit(SimulationConfigError):
        config = SimulationConfig(
            customers=customers,
            days=days,
            seed=seed,
            start=default_start(days),
            breakdowns=parse_breakdowns(breakdowns or (DEFAULT_PRESET,)),
        )
    base = settings_or_exit()
    settings, env = demo_settings(start_broker(base))
    reset(settings, env)
    worker, log = start_worker(settings, env)
    try:
        planted = send_company(settings, config)
        ticks = wait_processed(settings, worker, log, timeout)
        say(f"all stored; {ticks} idle clock ticks moved event time to now")
    finally:
        stop_worker(worker)
    findings = report_and_summary(settings, Path(output))
    _conclude(base, settings, planted, findings, Path(output), stop, time.monotonic() - started)


def _conclude(
    base: Settings,
    settings: Settings,
    planted: list[str],
    findings: list[str],
    output: Path,
    stop: bool,
    seconds: float,
) -> None:
    out.rule("what was simulated")
    for line in planted:
        out.print(line)
    out.rule("what the pipeline found")
    for line in findings:
        out.print(line)
    out.rule()
    out.print(f"Report: [bold]{output.resolve()}[/] (open it in a browser; it works offline)")
    out.print(f"Demo finished in {seconds:.0f}s.")
    if stop and "kafka_bootstrap_servers" not in base.model_fields_set:
        with errors_as_exit(LocalBrokerError):
            local_broker(base).stop()
        out.print("Kafka broker stopped.")
        return
    out.print(
        "The Kafka broker keeps running; stop it with `journeys kafka stop` "
        "(or run the demo with --stop)."
    )
    out.print(
        f"The demo's data stays in ClickHouse database {settings.clickhouse_database}; "
        "docs/demo.md ('Keep exploring') runs live traffic through it."
    )
