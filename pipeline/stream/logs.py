"""The worker's log output: Faust's root logger level undone, Kafka client errors rate-limited.

While a broker is down, aiokafka and Faust log the same connection errors about a hundred
times a second. `RepeatLimiter` lets the first of each kind through, then one every
`every` seconds saying how many were suppressed and for how long the trouble has lasted;
a kind not seen for `every` seconds starts afresh (a new outage is said at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

KAFKA_LOGGERS = ("aiokafka", "faust", "kafka", "mode")


def quiet_root_logger() -> None:
    """Undo Faust's root logger at DEBUG when the worker logs at WARN or above, and
    rate-limit repeated Kafka client errors on every handler.

    At `-l warn` (Faust's default) the worker sets the root logger to DEBUG so that its
    terminal spinner sees every record; then every `log.debug` in aiokafka and Faust builds
    a record that the handler then drops (6-8% of the event loop in the benchmark's
    profile). Raising the root logger to its handlers' lowest level drops them unbuilt.
    """
    root = logging.getLogger()
    levels = [h.level for h in root.handlers if type(h).__name__ != "SpinnerHandler"]
    if levels and root.level < min(levels):
        root.setLevel(min(levels))
    for handler in root.handlers:
        if not any(isinstance(f, RepeatLimiter) for f in handler.filters):
            handler.addFilter(RepeatLimiter())


@dataclass
class _Seen:
    first: float
    last: float
    said: float
    suppressed: int = 0


class RepeatLimiter(logging.Filter):
    def __init__(self, every: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.every = every
        self.clock = clock
        self._seen: dict[tuple[str, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(KAFKA_LOGGERS):
            return True
        key = (record.name, str(record.msg))  # the template: the same error, any node
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen.last > self.every:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[key] = _Seen(first=now, last=now, said=now)
            return True
        seen.last = now
        if now - seen.said < self.every:
            seen.suppressed += 1
            return False
        record.msg = (
            f"{record.msg} [same message {seen.suppressed} more times in the last "
            f"{now - seen.said:.0f}s; going on for {now - seen.first:.0f}s]"
        )
        seen.said, seen.suppressed = now, 0
        return True
