"""The local broker's jars: resolved from Maven Central by Maven through the pinned `pom.xml`
beside this file, once, into a cache directory that later starts use offline."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.kafka.exceptions import BrokerStartFailed, MissingPrerequisite

POM = Path(__file__).with_name("pom.xml")


def require_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingPrerequisite(
            "Maven is not installed: it resolves the Kafka broker's jars from Maven Central "
            "on the first start (Debian: apt-get install maven)."
        )
    return mvn


def pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()[:16]


def ensure_jars(jars_dir: Path, say: Callable[[str], None] = lambda _: None) -> Path:
    """Resolve the pinned broker jars into `jars_dir` once; later calls use the cache."""
    # Absolute: Maven resolves a relative outputDirectory against the pom's folder.
    jars_dir = jars_dir.absolute()
    marker = jars_dir / ".resolved"
    if marker.exists() and marker.read_text().strip() == pom_digest():
        return jars_dir
    mvn = require_maven()
    say(f"resolving Apache Kafka jars with Maven into {jars_dir} (first start only)")
    staging = jars_dir.with_name(jars_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    started = time.monotonic()
    returncode, output = _run_maven(cmd, staging, say)
    if returncode != 0:
        tail = "".join(output).strip().splitlines()[-15:]
        raise BrokerStartFailed("Maven could not resolve the Kafka jars:\n" + "\n".join(tail))
    count, size = _jars_in(staging)
    say(f"{count} Kafka jars ({size / 1e6:.0f} MB) ready in {time.monotonic() - started:.0f} s")
    shutil.rmtree(jars_dir, ignore_errors=True)
    staging.rename(jars_dir)
    marker.write_text(pom_digest())
    return jars_dir


def _run_maven(cmd: list[str], staging: Path, say: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run Maven, saying every few seconds how far it got: a first resolve downloads ~45 MB
    and would otherwise look like a hang."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output: list[str] = []
    reader = threading.Thread(target=output.extend, args=(process.stdout,), daemon=True)
    reader.start()
    started = time.monotonic()
    next_report = started + 1.0
    while process.poll() is None:
        time.sleep(0.2)
        if time.monotonic() >= next_report:
            downloads = sum("Downloaded from" in line for line in list(output))
            count, size = _jars_in(staging)
            say(
                f"maven: {time.monotonic() - started:.0f} s, {downloads} files downloaded, "
                f"{count} jars in place ({size / 1e6:.0f} MB)"
            )
            next_report += 5.0
    reader.join(timeout=10)
    return process.returncode, output


def _jars_in(directory: Path) -> tuple[int, int]:
    """(number, total bytes) of the jars in `directory`; it may be changing under us."""
    count = size = 0
    for jar in directory.glob("*.jar"):
        with contextlib.suppress(OSError):
            size += jar.stat().st_size
            count += 1
    return count, size
