"""Kafka client errors repeated during an outage: said once, then at a bounded rate."""

from __future__ import annotations

import logging

from pipeline.stream.logs import RepeatLimiter


def record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, ("node-1",), None)


def test_an_outage_is_said_once_then_every_interval_with_its_count_and_duration() -> None:
    now = [0.0]
    limiter = RepeatLimiter(every=30.0, clock=lambda: now[0])
    said = []
    for _ in range(110 * 65):  # 110 lines a second for 65 seconds
        now[0] += 1 / 110
        r = record("aiokafka.conn", "Unable connect to node %s")
        if limiter.filter(r):
            said.append(r.getMessage())
    assert len(said) == 3  # at 0 s, 30 s and 60 s
    assert said[0] == "Unable connect to node node-1"
    assert "more times in the last 30s; going on for 30s" in said[1]
    assert "going on for 60s" in said[2]


def test_a_new_outage_is_said_at_once_and_other_loggers_pass() -> None:
    now = [0.0]
    limiter = RepeatLimiter(every=30.0, clock=lambda: now[0])
    assert limiter.filter(record("aiokafka", "down %s"))
    now[0] = 5.0
    assert not limiter.filter(record("aiokafka", "down %s"))
    now[0] = 100.0  # quiet for longer than the interval: a new outage
    assert limiter.filter(record("aiokafka", "down %s"))
    assert limiter.filter(record("pipeline.stream", "flushed %s"))
    assert limiter.filter(record("aiokafka", "fetching %s", logging.INFO))
