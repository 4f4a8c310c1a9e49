"""A single-node Apache Kafka broker in KRaft mode, run from jars that Maven resolves.

Used by `journeys kafka start|stop|status`, `journeys demo` and the integration tests. The
jars come from Maven Central (`pipeline.kafka.jars`) and are cached, so only the first start
needs the network. The broker's log directory lives under `home` and is kept across stops,
so messages survive a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.kafka.exceptions import (
    BrokerAlreadyRunning,
    BrokerNotRunning,
    BrokerStartFailed,
    MissingPrerequisite,
)
from pipeline.kafka.jars import ensure_jars

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
MIN_JAVA = 17


@dataclass(frozen=True)
class BrokerState:
    pid: int
    port: int
    controller_port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def as_json(self) -> str:
        # bootstrap_servers is what other processes read (Settings.bootstrap_servers); the
        # rest is how this module recognises its own broker.
        return json.dumps(
            {
                "pid": self.pid,
                "port": self.port,
                "controller_port": self.controller_port,
                "bootstrap_servers": self.bootstrap_servers,
            }
        )


def running_broker_address(home: Path) -> str | None:
    """The address of the local broker under `home` when it runs, else None. Read-only, so
    any process may ask (unlike LocalBroker.state, which removes a stale state file)."""
    try:
        raw = json.loads((home / "broker.json").read_text())
        pid, port = int(raw["pid"]), int(raw["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return f"127.0.0.1:{port}" if _is_our_broker(pid) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a listener could bind `port` now. SO_REUSEADDR as the broker's JVM binds: a
    port the broker used a moment ago holds TIME-WAIT connections for about a minute, which
    block a plain bind but not a listener, and a restart must keep its clients' address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def java_major_version(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return 0
    major = int(match.group(1))
    # Java 8 and older report "1.8".
    return int(match.group(2) or 0) if major == 1 else major


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise MissingPrerequisite(
            "Java is not installed: the local Kafka broker needs Java 17 or newer on PATH "
            "(Debian: apt-get install openjdk-17-jre-headless)."
        )
    version = java_major_version(java)
    if version < MIN_JAVA:
        raise MissingPrerequisite(
            f"Java {version} found at {java}: the local Kafka broker needs Java {MIN_JAVA}+."
        )
    return java


class LocalBroker:
    """One KRaft broker+controller on loopback, owned through a state file under `home`."""

    def __init__(self, home: Path, jars_dir: Path, preferred_port: int = 9092, heap: str = "512m"):
        self.home = home
        self.jars_dir = jars_dir
        self.preferred_port = preferred_port
        self.heap = heap

    @property
    def state_file(self) -> Path:
        return self.home / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def log_dir(self) -> Path:
        return self.home / "data"

    # --- state -------------------------------------------------------------------------
    def state(self) -> BrokerState | None:
        """The running broker, or None; a stale state file (dead process) is removed."""
        if not self.state_file.exists():
            return None
        try:
            raw = json.loads(self.state_file.read_text())
            state = BrokerState(int(raw["pid"]), int(raw["port"]), int(raw["controller_port"]))
        except (ValueError, KeyError):
            self.state_file.unlink(missing_ok=True)
            return None
        if not _is_our_broker(state.pid):
            self.state_file.unlink(missing_ok=True)
            return None
        return state

    def _last_ports(self) -> tuple[int, int] | None:
        """The ports of the last start, unless the preferred port was reconfigured since
        (ports.json from before the preference was recorded counts as unchanged)."""
        ports = self.home / "ports.json"
        if not ports.exists():
            return None
        raw = json.loads(ports.read_text())
        if raw.get("preferred_port", self.preferred_port) != self.preferred_port:
            return None
        return int(raw["port"]), int(raw["controller_port"])

    def _choose_ports(self, say: Callable[[str], None]) -> tuple[int, int]:
        """The ports of the last start when free, else the preferred port, else any free
        one; a client port other than the expected one is said, since clients configured
        with the old address will not find the broker."""
        last = self._last_ports()
        wanted = last[0] if last else self.preferred_port
        port = wanted if port_is_free(wanted) else free_port()
        if port != wanted:
            before = " (the broker's port at its last start)" if last else ""
            say(f"port {wanted}{before} is taken; using {port} instead")
        if last and last[0] == port and port_is_free(last[1]):
            return port, last[1]
        controller = free_port()
        while controller == port:
            controller = free_port()
        return port, controller

    # --- lifecycle ---------------------------------------------------------------------
    def start(
        self, timeout: float = 90.0, say: Callable[[str], None] = lambda _: None
    ) -> BrokerState:
        running = self.state()
        if running is not None:
            raise BrokerAlreadyRunning(
                f"the local Kafka broker is already running at {running.bootstrap_servers} "
                f"(pid {running.pid})"
            )
        java = require_java()
        ensure_jars(self.jars_dir, say)
        self.home.mkdir(parents=True, exist_ok=True)
        port, controller_port = self._choose_ports(say)
        config = self._write_config(port, controller_port)
        self._format_storage(java, config)
        process = self._launch(java, config)
        state = BrokerState(process.pid, port, controller_port)
        self.state_file.write_text(state.as_json())
        remembered = {"port": port, "controller_port": controller_port}
        (self.home / "ports.json").write_text(
            json.dumps(remembered | {"preferred_port": self.preferred_port})
        )
        try:
            self._wait_until_ready(process, state, timeout)
        except BrokerStartFailed:
            self._terminate(process.pid, grace=5.0)
            self.state_file.unlink(missing_ok=True)
            raise
        return state

    def stop(self, grace: float = 30.0) -> BrokerState:
        state = self.state()
        if state is None:
            raise BrokerNotRunning("the local Kafka broker is not running")
        self._terminate(state.pid, grace)
        self.state_file.unlink(missing_ok=True)
        return state

    def kill(self) -> None:
        """Stop without a clean shutdown (tests use it to simulate a crash)."""
        state = self.state()
        if state is not None:
            os.kill(state.pid, signal.SIGKILL)
            _wait_gone(state.pid, 10.0)
            self.state_file.unlink(missing_ok=True)

    # --- internals ---------------------------------------------------------------------
    def _write_config(self, port: int, controller_port: int) -> Path:
        config = self.home / "server.properties"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dir.resolve()),
            # One node: every internal topic must accept a replication factor of one.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            # Without this a new consumer group waits 3 s before its first assignment.
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "-1",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        config.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return config

    def _classpath(self) -> str:
        return str(self.jars_dir.resolve() / "*")

    def _format_storage(self, java: str, config: Path) -> None:
        if (self.log_dir / "meta.properties").exists():
            return  # formatted before: keep the data (and the cluster id) across restarts
        cluster_id = _cluster_id()
        # `--cluster-id=` form: a random id may start with "-", which argparse would take
        # for an option after a separate `-t` (one start in 64 failed that way).
        cmd = [java, "-cp", self._classpath(), "kafka.tools.StorageTool", "format",
               f"--cluster-id={cluster_id}", "-c", str(config)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerStartFailed(
                "formatting the broker's storage failed:\n" + done.stdout + done.stderr
            )

    def _launch(self, java: str, config: Path) -> subprocess.Popen[bytes]:
        cmd = [
            java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.file={self.log_file.resolve()}",
            "-cp", self._classpath(), "kafka.Kafka", str(config),
        ]  # fmt: skip
        console = open(self.home / "broker.out", "ab")  # noqa: SIM115 - handed to the child
        # A new session: the broker outlives the CLI that started it, and Ctrl-C in the
        # terminal does not reach it.
        return subprocess.Popen(
            cmd, stdout=console, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait_until_ready(
        self, process: subprocess.Popen[bytes], state: BrokerState, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerStartFailed(
                    f"the broker exited with code {process.returncode}; last log lines:\n"
                    + self._log_tail()
                )
            if broker_answers(state.bootstrap_servers):
                return
            time.sleep(0.3)
        raise BrokerStartFailed(
            f"the broker did not answer within {timeout:.0f} s:\n" + self._log_tail()
        )

    def _log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.home / "broker.out", self.log_file):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def _terminate(self, pid: int, grace: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, grace):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)


def broker_answers(bootstrap_servers: str) -> bool:
    """True when the broker completes a metadata request (not merely accepts TCP)."""
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            pass
    except OSError:
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _cluster_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _is_our_broker(pid: int) -> bool:
    """The pid is alive and is a Kafka broker (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_our_broker(pid):
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    return not _is_our_broker(pid)
