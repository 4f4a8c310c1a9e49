"""Replays within the process: how a message whose processing raises is found and set aside.

The validator is the gate for bad input; an exception while processing is a bug we have
not thought of. After one, the worker's memory (books, de-dup ids, clocks, wake-ups) may be
half updated, so nothing derived from it may be committed. Instead of stopping, the runtime
rewinds to the last checkpoint (`Runtime._rewind`) and reads the input again, with what
this module remembers:

- where to read from again, per topic-partition: the offsets the last checkpoint committed,
  or the first offset taken since the partition was assigned (`replay_from`);
- which messages failed: every message of a batch that raised is processed alone during
  the replay (a suspect), so the next failure names one message; a message whose processing
  raised `attempts` times, the last time alone, is a poison pill: the replay dead-letters it
  (code `processing_error`) instead of processing it;
- which messages were already counted: received, accepted and rejected are counted once per
  message, so the replay of a message counted before the rewind counts nothing, and the
  counters never step back (Prometheus would read a step back as a reset).

What is remembered about a position is dropped once a checkpoint commits past it. No Faust,
no I/O: `Runtime` does the seeking and the dead-lettering.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

TopicPartition = tuple[str, int]
Spot = tuple[str, int, int]  # topic, partition, offset

MAX_ERROR_CHARS = 500


def describe(exc: BaseException) -> str:
    """`Type: message` of an exception, one line, bounded (for logs, headers and rows)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


class Replays:
    def __init__(self, attempts: int) -> None:
        if attempts < 1:
            raise ValueError(f"attempts={attempts}: expected at least 1")
        self.attempts = attempts
        self.replay_from: dict[TopicPartition, int] = {}
        self._counted_to: dict[TopicPartition, int] = {}  # after the last message counted
        self._recount_below: dict[TopicPartition, int] = {}  # replay: counted before
        self._suspects: set[Spot] = set()
        self._failures: Counter[Spot] = Counter()
        self._poison: dict[Spot, str] = {}  # spot -> the exception, described

    def taken(self, topic: str, partition: int, first_offset: int) -> None:
        """A fetch holds this partition from `first_offset` on (before any is processed)."""
        self.replay_from.setdefault((topic, partition), first_offset)

    def runs(self, topic: str, partition: int, records: Sequence[Any]) -> Iterator[
        tuple[Sequence[Any], bool]
    ]:  # fmt: skip
        """The records in runs to process each at once, with whether to count them.

        Outside a replay that is one run, counted. During one, records counted before the
        rewind form runs of their own, and each suspect or poison pill is a run of one.
        """
        if not (self._suspects or self._poison or self._recount_below):
            yield records, True
            return
        mark = self._recount_below.get((topic, partition), -1)
        run: list[Any] = []
        run_counted = True
        for record in records:
            spot = (topic, partition, record.offset)
            counted = record.offset >= mark
            if spot in self._suspects or spot in self._poison:
                if run:
                    yield run, run_counted
                    run = []
                yield [record], counted
                continue
            if run and counted != run_counted:
                yield run, run_counted
                run = []
            run_counted = counted
            run.append(record)
        if run:
            yield run, run_counted

    def poison(self, topic: str, partition: int, offset: int) -> str | None:
        """The exception that made this message a poison pill, if it is one."""
        return self._poison.get((topic, partition, offset)) if self._poison else None

    def processed(self, topic: str, partition: int, last_offset: int) -> None:
        """Messages up to `last_offset` are processed (or dead-lettered) and counted."""
        key = (topic, partition)
        if last_offset >= self._counted_to.get(key, -1):
            self._counted_to[key] = last_offset + 1
        if self._recount_below and last_offset + 1 >= self._recount_below.get(key, 0):
            self._recount_below.pop(key, None)

    def failed(self, topic: str, partition: int, offsets: Sequence[int], error: str) -> int:
        """Processing these messages raised; returns the attempts of the message if it was
        alone (it is a poison pill once they reach `attempts`), else 0."""
        spots = [(topic, partition, offset) for offset in offsets]
        self._failures.update(spots)
        if len(spots) > 1:
            self._suspects.update(spots)
            return 0
        (spot,) = spots
        if self._failures[spot] >= self.attempts:
            self._poison[spot] = error
        return self._failures[spot]

    def rewound(self) -> None:
        """The runtime went back to `replay_from`: what was counted since is not recounted."""
        self._recount_below = {
            key: counted
            for key, counted in self._counted_to.items()
            if counted > self.replay_from.get(key, counted)
        }

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """A checkpoint committed these next offsets: replays start there, and what is
        remembered about earlier messages is dropped."""
        self.replay_from.update(offsets)
        if not (self._suspects or self._failures or self._poison):
            return

        def pending(spot: Spot) -> bool:
            return spot[2] >= offsets.get((spot[0], spot[1]), -1)

        self._suspects = {spot for spot in self._suspects if pending(spot)}
        self._failures = Counter({s: n for s, n in self._failures.items() if pending(s)})
        self._poison = {spot: error for spot, error in self._poison.items() if pending(spot)}

    def forget(self, partition: int) -> None:
        """The partition moved to another worker, which reads it from the committed offsets."""
        for marks in (self.replay_from, self._counted_to, self._recount_below):
            for key in [key for key in marks if key[1] == partition]:
                del marks[key]
        self._suspects = {spot for spot in self._suspects if spot[1] != partition}
        self._failures = Counter({s: n for s, n in self._failures.items() if s[1] != partition})
        self._poison = {spot: e for spot, e in self._poison.items() if spot[1] != partition}
