"""The worker's Faust-free core: batches of raw messages in, rows, dead letters and alerts out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.journey.events import to_us
from pipeline.stream.processor import Inbound, JourneyProcessor, Output
from pipeline.stream.worker import partitioner
from tests.support.stream_messages import (
    NOW,
    SCRIPT,
    T0,
    inbound,
    processor,
    promise,
    touchpoint,
)


def run(p: JourneyProcessor, values: list[bytes], partition: int = 0, start: int = 0) -> Output:
    return p.process(partition, inbound(values, partition, start), NOW)


def test_accepted_touchpoints_become_rows_with_assigned_journey_and_provenance() -> None:
    p = processor()
    out = run(p, [touchpoint("e1", 0, attributes={"resolved": False}),
                  touchpoint("e2", 60, attributes={"resolved": True})])  # fmt: skip
    rows = out.rows["touchpoints"]
    assert [r["event_id"] for r in rows] == ["e1", "e2"]
    assert {r["journey_id"] for r in rows} == {"J1"}
    assert rows[1]["_topic"] == "touchpoints" and rows[1]["_offset"] == 1
    assert [r["journey_id"] for r in out.rows["journeys"]] == ["J1"]  # one snapshot per batch
    assert {s["signal"] for s in out.rows["journey_signals"]} >= {"repeat_contact"}
    assert out.scores and orjson.loads(out.scores[0][1])["journey_id"] == "J1"


def test_malformed_messages_are_dead_letters_with_reasons_and_accounting_holds() -> None:
    p = processor()
    out = run(p, [b"{nope", touchpoint("e1", 0), b'{"event_id": "x"}'])
    letters = out.rows["dead_letters"]
    assert [r["raw"] for r in letters] == ["{nope", '{"event_id": "x"}']
    assert all(r["reason_code"] and r["reason"] for r in letters)
    assert [r["source_offset"] for r in letters] == [0, 2]
    counts = p.metrics.counts
    assert counts["received"] == 3 == counts["accepted"] + counts["rejected"]


def test_a_tombstone_is_a_dead_letter_with_its_own_code_not_a_crash() -> None:
    p = processor()
    out = p.process(0, [Inbound("touchpoints", 0, 7, None), *inbound([touchpoint("e1", 0)], 0, 8)],
                    NOW)  # fmt: skip
    (row,) = out.rows["dead_letters"]
    assert (row["reason_code"], row["raw"], row["source_offset"]) == ("tombstone", "", 7)
    assert [(raw, rejection.code) for raw, _, rejection in out.dead_letters] == [(b"", "tombstone")]
    assert [r["event_id"] for r in out.rows["touchpoints"]] == ["e1"]  # the next one goes on
    counts = p.metrics.counts
    assert (counts["received"], counts["accepted"], counts["rejected"]) == (2, 1, 1)


def test_a_rejected_routed_message_is_dead_lettered_but_not_counted_received_twice() -> None:
    p = processor()
    out = p.process(0, [Inbound("routed", 0, 0, b"{junk"), Inbound("routed", 0, 1, None)], NOW)
    assert [r["reason_code"] for r in out.rows["dead_letters"]] == ["not_json", "tombstone"]
    counts = p.metrics.counts
    assert (counts["received"], counts["rejected"], counts["routed_rejected"]) == (0, 0, 2)


def test_a_resent_event_is_counted_once_and_stored_once() -> None:
    p = processor()
    first = run(p, [touchpoint("e1", 0), touchpoint("e1", 0)])
    again = run(p, [touchpoint("e1", 0)], start=2)
    assert len(first.rows["touchpoints"]) == 1 and "touchpoints" not in again.rows
    assert p.metrics.counts["duplicates"] == 2


def test_a_duplicate_past_the_window_is_still_ignored_by_its_journey() -> None:
    table: dict[str, bytes] = {}
    p = processor(table=table)
    run(p, [touchpoint("e1", 0)])
    table["J1"] = p.books.get("J1").to_bytes()  # type: ignore[union-attr]
    fresh = processor(table=table)  # a restarted worker: empty de-dup memory
    out = run(fresh, [touchpoint("e1", 0)])
    assert "touchpoints" not in out.rows and fresh.metrics.counts["duplicates"] == 1


def test_a_journey_id_equal_to_another_customers_id_is_its_own_journey() -> None:
    # Order "C-1" of customer C-9, and customer C-1's touchpoints without journey_id: one
    # Kafka key, two books (the engine refused to mix them: ValueError, the worker stopped).
    table: dict[str, bytes] = {}
    p = processor(table=table)
    by_customer = touchpoint("e1", 0, journey_id=None, customer_id="C-1")
    by_journey = touchpoint("e2", 1, journey_id="C-1", customer_id="C-9")
    out = run(p, [by_customer, by_journey])
    assigned = {r["event_id"]: (r["customer_id"], r["journey_id"]) for r in out.rows["touchpoints"]}
    assert assigned["e2"] == ("C-9", "C-1")
    assert assigned["e1"][0] == "C-1" and assigned["e1"][1].startswith("C-1@")
    _, written = p.books.snapshot([0])
    assert set(written[0]) == {"C-1", "\x00customer:C-1"}
    table.update(written[0])
    restarted = processor(table=table)  # both read back, each as its own kind
    later = run(restarted, [touchpoint("e3", 2, journey_id="C-1", customer_id="C-9"),
                            touchpoint("e4", 3, journey_id=None, customer_id="C-1")])  # fmt: skip
    counts = {r["journey_id"]: r["touchpoint_count"] for r in later.rows["journeys"]}
    assert counts == {"C-1": 2, assigned["e1"][1]: 2}


def test_an_event_on_the_wrong_partition_is_rerouted_to_its_journey_key() -> None:
    p = processor(partitions=8)
    target = partitioner(8)("J1")
    wrong = (target + 1) % 8
    out = run(p, [touchpoint("e1", 0)], partition=wrong)
    assert out.reroutes == [(target, "J1", touchpoint("e1", 0))]
    assert "touchpoints" not in out.rows and p.metrics.counts["accepted"] == 1


def test_a_promise_never_kept_breaks_when_the_partition_clock_passes_its_due_time() -> None:
    p = processor()
    first = run(p, [promise("e1", 0, 4, "J1")])
    assert not any(s["signal"] == "promise_broken" for s in first.rows.get("journey_signals", []))
    # J1 gets no later event; another journey's event moves the partition's clock past due.
    later = run(p, [touchpoint("x1", 60 * 5, journey_id="J2", customer_id="c2")], start=1)
    broken = [s for s in later.rows["journey_signals"] if s["signal"] == "promise_broken"]
    assert [(s["journey_id"], s["department"]) for s in broken] == [("J1", "maintenance")]
    assert any(orjson.loads(a)["kind"] == "promise_broken" for _, a in later.alerts)


def test_a_tick_fires_deadlines_and_a_replay_without_ticks_does_not() -> None:
    p = processor()
    run(p, [promise("e1", 0, 4, "J1")])
    replay = run(p, [touchpoint("x1", 60, journey_id="J2", customer_id="c2")], start=1)
    assert not any(s["signal"] == "promise_broken" for s in replay.rows.get("journey_signals", []))
    tick = Inbound("touchpoints.routed", 0, 0, b"", tick_us=to_us(T0 + timedelta(hours=5)))
    ticked = p.process(0, [tick], NOW)
    assert [s["signal"] for s in ticked.rows["journey_signals"]] == ["promise_broken"]


def test_a_promise_due_within_the_horizon_alerts_its_department_once() -> None:
    p = processor()
    out = run(p, [promise("e1", 0, 2, "J1")])
    again = run(p, [touchpoint("e2", 30)], start=1)
    kinds = [orjson.loads(a) for _, a in out.alerts + again.alerts]
    due = [a for a in kinds if a["kind"] == "promise_due_soon"]
    assert [(a["department"], a["promise_id"]) for a in due] == [("maintenance", "p1")]


def final_state(batches: list[list[bytes]]) -> dict[str, Any]:
    p, journeys, signals, offset = processor(), {}, {}, 0
    for batch in batches:
        out = run(p, batch, start=offset)
        offset += len(batch)
        journeys |= {r["journey_id"]: _clockless(r) for r in out.rows.get("journeys", [])}
        journeys = {k: v for k, v in journeys.items() if not v.get("is_deleted")}
        signals |= {r["signal_id"]: r["active"] for r in out.rows.get("journey_signals", [])}
    return {"journeys": journeys, "signals": {k for k, v in signals.items() if v}}


def _clockless(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in row.items() if not k.startswith("_") and k not in ("version", "updated_at")
    }


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(len(SCRIPT))), st.lists(st.integers(1, 4), min_size=1, max_size=8))
def test_batching_and_arrival_order_do_not_change_the_final_state(
    order: list[int], sizes: list[int]
) -> None:
    messages, batches, i = [SCRIPT[k] for k in order], [], 0
    for size in sizes * len(SCRIPT):
        if i >= len(messages):
            break
        batches.append(messages[i : i + size])
        i += size
    assert final_state(batches) == final_state([SCRIPT])
