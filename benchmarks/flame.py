"""Where the worker's event loop spends its time, from py-spy samples of the running worker.

`py-spy record --format raw --idle --threads` writes one line per distinct stack: frames
joined by `;` (the thread first) and a sample count. `breakdown` puts each main-thread
sample into the first category whose marker appears in its stack, so the shares add up to
100% and name the wall in the worker's own terms.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Order matters: a stack goes to the first category that matches it.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle: waiting in epoll", ("EpollSelector.select",)),
    ("processor: validate, route, de-dup, score, build rows", ("JourneyProcessor.process",)),
    ("state table writes and their changelog (StateTable.persist)", ("StateTable.persist",)),
    ("queuing scores, alerts, dead letters (Runtime._buffer)", ("Runtime._buffer",)),
    ("sending a checkpoint's messages in whole batches (Outbox)", ("Outbox.send",)),
    ("sink: JSONEachRow and the insert call", ("ClickHouseSink.write",)),
    ("checkpoint: journey rows and score messages, once per checkpoint (PartitionBatch.seal)",
     ("PartitionBatch.seal",)),
    ("checkpoint: encoding the books it stores (BookCache.snapshot)", ("BookCache.snapshot",)),
    ("aiokafka producer: batching and produce requests",
     ("Sender.", "_sender_routine", "AIOKafkaProducer", "message_accumulator")),
    ("Faust producer buffer", ("ProducerBuffer",)),
    ("consuming: fetch and Faust's per-event dispatch",
     ("Fetcher", "_drain_messages", "Conductor", "getmany", "_c_aiter", "Stream.",
      "_wait_next_records", "Runtime._inbound")),
    ("offset commits", ("commit_offsets", "_commit_offsets", "_commit_handler", "Consumer.commit")),
    ("checkpoint: the rest of its work on the event loop (Checkpoint.commit)",
     ("Checkpoint.commit",)),
    ("runtime: the rest of handling a fetch (Runtime._handle)", ("Runtime._handle",)),
    ("logging", ("logging/",)),
)  # fmt: skip
OTHER = "other: asyncio, mode, Faust timers and services"


def breakdown(folded: str, thread: str = "MainThread") -> dict[str, float]:
    """Share (0-1) of the thread's samples per category, largest first."""
    counts: Counter[str] = Counter()
    for line in folded.splitlines():
        stack, _, number = line.rstrip().rpartition(" ")
        if not number.isdigit():
            continue
        frames = stack.split(";")
        if thread not in frames[0]:
            continue
        joined = ";".join(frames[1:])
        name = next((n for n, markers in CATEGORIES if any(m in joined for m in markers)), OTHER)
        counts[name] += int(number)
    total = sum(counts.values())
    return {name: n / total for name, n in counts.most_common()} if total else {}


def py_spy() -> str | None:
    """The py-spy executable beside this Python, or on PATH; None when not installed."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling the process for `seconds`; None when py-spy is not available."""
    executable = py_spy()
    if executable is None:
        return None
    # --nonblocking: pausing every thread for each sample (chdb runs dozens) slowed the
    # worker under test several times over and stalled its commits.
    argv = [executable, "record", "-p", str(pid), "-d", str(int(seconds)), "--idle",
            "--threads", "--nonblocking", "-f", "raw", "-o", str(output)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
