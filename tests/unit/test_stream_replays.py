"""A poison pill (an exception while processing an accepted event) does not stop the worker.

The runtime rewinds to the last checkpoint, reads the input again with the failing batch's
messages one at a time, and dead-letters the one that keeps failing (`processing_error`);
every other message is processed exactly once into the buffers and counted once. The bug
is injected into row building, which the validator's bounds otherwise make safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.contract import Touchpoint, encode_touchpoint
from pipeline.stream import rows
from pipeline.stream.processor import JourneyProcessor
from pipeline.stream.replays import Replays
from tests.support.runtime_rig import ROUTED, TOPIC, RuntimeRig, record

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def event(event_id: str, minutes: int = 0, journey_id: str | None = "J1") -> bytes:
    touchpoint = Touchpoint(
        event_id=event_id, occurred_at=AT + timedelta(minutes=minutes), customer_id="C1",
        department="sales", type="contact", journey_id=journey_id, attributes={"resolved": False},
    )  # fmt: skip
    return encode_touchpoint(touchpoint)


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Row building raises for the event ids in the returned set (a bug we did not foresee)."""
    failing: set[str] = set()
    real = rows.touchpoint_row

    def touchpoint_row(touchpoint: Touchpoint, *args: Any) -> rows.Row:
        if touchpoint.event_id in failing:
            raise RuntimeError(f"injected bug for {touchpoint.event_id}")
        return real(touchpoint, *args)

    monkeypatch.setattr(rows, "touchpoint_row", touchpoint_row)
    yield failing


def stored_events(rig: RuntimeRig) -> list[str]:
    return sorted(row["event_id"] for row in rig.buffered("touchpoints"))


def counts(rig: RuntimeRig) -> tuple[int, int, int]:
    c = rig.metrics.counts
    return c["received"], c["accepted"], c["rejected"]


def test_a_poison_pill_is_dead_lettered_after_two_attempts_and_the_rest_goes_on(
    runtime_factory: Callable[..., RuntimeRig], bug: set[str]
) -> None:
    bug.add("bad")
    rig = runtime_factory()
    names = ["e0", "e1", "bad", "e3", "e4"]
    rig.deliver([record(TOPIC, 0, i, event(n, i)) for i, n in enumerate(names)])
    # The batch raised: nothing of it is buffered or counted; back to the first offset taken.
    assert rig.rewinds == [{(TOPIC, 0): 0}] and stored_events(rig) == []
    assert counts(rig) == (0, 0, 0) and rig.metrics.counts["processing_failures"] == 1
    rig.redeliver()  # each message alone: e0 and e1 pass, "bad" fails again
    assert rig.rewinds[-1] == {(TOPIC, 0): 0} and rig.metrics.counts["processing_failures"] == 2
    assert counts(rig) == (2, 2, 0)  # counted once, and not again by the next replay
    rig.redeliver()
    assert len(rig.rewinds) == 2  # no third failure: "bad" is set aside, not processed
    assert stored_events(rig) == ["e0", "e1", "e3", "e4"]  # each once, in the buffers
    assert counts(rig) == (5, 4, 1) and rig.metrics.counts["duplicates"] == 0
    assert rig.metrics.counts["poison_pills"] == 1
    assert rig.metrics.rejected_by_code == {"processing_error": 1}
    (letter,) = rig.buffered("dead_letters")
    assert (letter["reason_code"], letter["source_offset"]) == ("processing_error", 2)
    assert letter["department"] == "sales" and letter["raw"] == event("bad", 2).decode()
    assert "RuntimeError: injected bug for bad" in letter["reason"]
    (journey,) = rig.buffered("journeys")[-1:]
    assert journey["touchpoint_count"] == 4  # the journey's state was rebuilt, not doubled
    dlq = [m for b in rig.runtime.sink._batches.values() for m in b.messages
           if m.topic == "touchpoints.dlq"]  # fmt: skip
    assert [dict(m.headers)["reason_code"] for m in dlq] == [b"processing_error"]
    assert "journeys_poison_pills_total 1.0" in rig.metrics.prometheus()


def test_a_catch_up_that_keeps_failing_dead_letters_its_books_last_message(
    runtime_factory: Callable[..., RuntimeRig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intake leaves catch-ups to a settle as its batch falls due; one that raises there
    is set aside as a failure in processing is: the message named is the book's last."""
    real = JourneyProcessor._catch_up

    def catch_up(self: JourneyProcessor, partition: int, book: Any, *args: Any) -> None:
        if book.book_key.endswith("J2"):
            raise RuntimeError("injected catch-up bug")
        real(self, partition, book, *args)

    monkeypatch.setattr(JourneyProcessor, "_catch_up", catch_up)
    rig = runtime_factory()
    rig.runtime.sink.flush_rows = 1  # due after every fetch: the intake settles
    monkeypatch.setattr(rig.runtime, "start_flush", lambda: None)  # no store to flush to
    messages = [event("e0", 0), event("x1", 1, "J2"), event("e2", 2)]
    rig.deliver([record(TOPIC, 0, i, value) for i, value in enumerate(messages)])
    assert rig.rewinds == [{(TOPIC, 0): 0}] and stored_events(rig) == []
    assert rig.metrics.counts["processing_failures"] == 1
    # Processed, and counted, before the settle failed: counted once, not again.
    assert counts(rig) == (3, 3, 0)
    rig.redeliver()  # x1 alone: its book's catch-up fails again
    assert rig.metrics.counts["processing_failures"] == 2
    rig.redeliver()
    assert len(rig.rewinds) == 2
    assert stored_events(rig) == ["e0", "e2"]
    assert counts(rig) == (3, 3, 0)
    (letter,) = rig.buffered("dead_letters")
    assert (letter["reason_code"], letter["source_offset"]) == ("processing_error", 1)
    assert "RuntimeError: injected catch-up bug" in letter["reason"]


def test_a_failure_that_does_not_repeat_alone_dead_letters_nothing(
    runtime_factory: Callable[..., RuntimeRig], monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = rows.touchpoint_row, []

    def once(*args: Any) -> rows.Row:  # fails the first time only: a transient fault
        calls.append(1)
        if len(calls) == 2:
            raise KeyError("once")
        return real(*args)

    monkeypatch.setattr(rows, "touchpoint_row", once)
    rig = runtime_factory()
    rig.deliver([record(TOPIC, 0, i, event(f"e{i}", i)) for i in range(4)])
    rig.redeliver()
    assert len(rig.rewinds) == 1 and stored_events(rig) == ["e0", "e1", "e2", "e3"]
    assert counts(rig) == (4, 4, 0) and not rig.buffered("dead_letters")


def test_messages_counted_before_the_rewind_are_not_counted_again(
    runtime_factory: Callable[..., RuntimeRig], bug: set[str]
) -> None:
    bug.add("bad")
    rig = runtime_factory(attempts=3)
    rig.deliver([record(TOPIC, 0, i, event(f"e{i}", i)) for i in range(3)])
    rig.deliver([record(TOPIC, 0, 3, event("bad", 3)), record(TOPIC, 0, 4, event("e4", 4))])
    assert counts(rig) == (3, 3, 0) and rig.rewinds == [{(TOPIC, 0): 0}]
    for _ in range(2):  # attempts=3: in its batch, then alone twice
        rig.redeliver()
        assert counts(rig) == (3, 3, 0), "a replay counted again"
    assert len(rig.rewinds) == 3
    rig.redeliver()
    assert counts(rig) == (5, 4, 1) and stored_events(rig) == ["e0", "e1", "e2", "e4"]


def test_a_poison_pill_on_one_partition_leaves_the_others_whole(
    runtime_factory: Callable[..., RuntimeRig], bug: set[str]
) -> None:
    bug.add("bad")
    rig = runtime_factory(partitions=2)  # journey J4 lives on partition 0, J1 on 1
    ours = [record(TOPIC, 0, 0, event("bad", 0, "J4")), record(TOPIC, 0, 1, event("e1", 1, "J4"))]
    tick = record(ROUTED, 1, 9, b"1700000000000000", key=b"\x00tick")
    other = [record(TOPIC, 1, 5, event("x5", 5, "J1")), tick]
    rig.deliver(other + ours)
    assert rig.rewinds[-1] == {(TOPIC, 0): 0, (TOPIC, 1): 5, (ROUTED, 1): 9}
    rig.redeliver()
    rig.redeliver()
    assert stored_events(rig) == ["e1", "x5"]
    assert counts(rig) == (3, 2, 1) and rig.metrics.counts["ticks"] == 1


def test_replays_split_a_batch_into_counted_runs_and_lone_suspects() -> None:
    replays = Replays(attempts=2)

    class R:
        def __init__(self, offset: int) -> None:
            self.offset = offset

    batch = [R(o) for o in range(10, 16)]
    replays.taken(TOPIC, 0, 10)
    assert [([r.offset for r in run], c) for run, c in replays.runs(TOPIC, 0, batch)] == [
        ([10, 11, 12, 13, 14, 15], True)
    ]
    replays.processed(TOPIC, 0, 12)
    assert replays.failed(TOPIC, 0, [13, 14], "KeyError: 'x'") == 0  # a batch: suspects
    replays.rewound()
    runs = [([r.offset for r in run], c) for run, c in replays.runs(TOPIC, 0, batch)]
    assert runs == [([10, 11, 12], False), ([13], True), ([14], True), ([15], True)]
    assert replays.failed(TOPIC, 0, [14], "KeyError: 'x'") == 2
    assert replays.poison(TOPIC, 0, 14) == "KeyError: 'x'" and replays.poison(TOPIC, 0, 13) is None
    replays.committed({(TOPIC, 0): 15})  # past them: forgotten, replays start there
    assert replays.poison(TOPIC, 0, 14) is None and replays.replay_from == {(TOPIC, 0): 15}


def test_the_dead_letter_names_the_exception_and_its_headers_encode(
    runtime_factory: Callable[..., RuntimeRig], bug: set[str]
) -> None:
    bug.add("bad\u2028é")
    rig = runtime_factory(attempts=1)
    rig.deliver([record(TOPIC, 0, 0, event("bad\u2028é"))])  # alone already: one attempt
    rig.redeliver()
    (letter,) = rig.buffered("dead_letters")
    assert letter["reason_code"] == "processing_error" and counts(rig) == (1, 0, 1)
    reason = orjson.loads(orjson.dumps(letter))["reason"]  # one line, JSON-safe
    assert reason.startswith("message: processing raised RuntimeError: injected bug for bad é")
    (dlq,) = [m for b in rig.runtime.sink._batches.values() for m in b.messages]
    assert dict(dlq.headers)["reason"].decode() == reason
