"""The worker's Faust-free core: batches of raw messages in, rows, dead letters and alerts out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.journey.events import to_us
from pipeline.simulate import SimulationConfig, simulate
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


def final_state(
    batches: list[list[bytes]], every: int | None = None, *, whole: bool = False
) -> dict[str, Any]:
    """The journeys (clockless, or `whole`: with their version and `updated_at`) and active
    signals the batches leave. With `every`, the worker's way: each batch processed with
    `settle=False`, and the books it touched caught up by `settle` every `every` batches
    (its checkpoints)."""
    p, offset = processor(), 0
    keep = _clocked if whole else _clockless
    journeys: dict[str, Any] = {}
    signals: dict[str, int] = {}
    for index, batch in enumerate(batches):
        outs = [p.process(0, inbound(batch, 0, offset), NOW, settle=every is None)]
        offset += len(batch)
        if every is not None and ((index + 1) % every == 0 or index == len(batches) - 1):
            outs.append(p.settle(0))
        for out in outs:
            journeys |= {r["journey_id"]: keep(r) for r in out.rows.get("journeys", [])}
            journeys = {k: v for k, v in journeys.items() if not v.get("is_deleted")}
            signals |= {r["signal_id"]: r["active"] for r in out.rows.get("journey_signals", [])}
    assert p.unsettled() == []
    return {"journeys": journeys, "signals": {k for k, v in signals.items() if v}}


def sliced(order: list[int], sizes: list[int]) -> list[list[bytes]]:
    """SCRIPT in `order`, in batches of the `sizes` in turn."""
    messages, batches, i = [SCRIPT[k] for k in order], [], 0
    for size in sizes * len(SCRIPT):
        if i >= len(messages):
            break
        batches.append(messages[i : i + size])
        i += size
    return batches


def _clocked(row: dict[str, Any]) -> dict[str, Any]:
    """The row without its provenance (which message, when taken in)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _clockless(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in row.items() if not k.startswith("_") and k not in ("version", "updated_at")
    }


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(len(SCRIPT))), st.lists(st.integers(1, 4), min_size=1, max_size=8))
def test_batching_and_arrival_order_do_not_change_the_final_state(
    order: list[int], sizes: list[int]
) -> None:
    assert final_state(sliced(order, sizes)) == final_state([SCRIPT])


# --- catch-ups left to `settle`, as the worker's intake leaves them -----------------------
@settings(max_examples=25, deadline=None)
@given(
    st.permutations(range(len(SCRIPT))),
    st.lists(st.integers(1, 4), min_size=1, max_size=8),
    st.integers(1, 5),
)
def test_catch_ups_left_to_settle_do_not_change_the_final_state(
    order: list[int], sizes: list[int], every: int
) -> None:
    batches = sliced(order, sizes)
    assert final_state(batches, every) == final_state([SCRIPT])
    # Whole rows, versions and `updated_at` too, as the same slices caught up one by one
    # leave them (and a re-score: deadlines fire just past themselves, never at an event).
    assert final_state(batches, every, whole=True) == final_state(batches, whole=True)


def test_settle_fires_the_deadline_a_later_batch_passed_and_alerts_once() -> None:
    p = processor()
    p.process(0, inbound([promise("e1", 0, 4, "J1")]), NOW, settle=False)
    assert p.unsettled() == [0]
    # J1 gets no later event; J2's moves the partition's clock past J1's promise.
    later = p.process(0, inbound([touchpoint("x1", 60 * 5, journey_id="J2", customer_id="c2")],
                                 start=1), NOW, settle=False)  # fmt: skip
    assert not any(s["signal"] == "promise_broken" for s in later.rows.get("journey_signals", []))
    settled = p.settle(0)
    broken = [s for s in settled.rows["journey_signals"] if s["signal"] == "promise_broken"]
    assert [(s["journey_id"], s["_offset"]) for s in broken] == [("J1", 0)]  # J1's last event
    assert [orjson.loads(a)["kind"] for _, a in settled.alerts] == ["promise_broken"]
    assert p.unsettled() == []
    assert p.settle(0).rows == {}  # each book once
    again = p.process(0, inbound([touchpoint("x2", 60 * 6, journey_id="J2", customer_id="c2")],
                                 start=2), NOW)  # fmt: skip
    assert not again.alerts


def test_a_noted_books_deadline_the_clock_passed_fires_before_its_next_event() -> None:
    """A customer-keyed book noted for a settle; other customers' events move the clock past
    its inactivity gap; then its next event, in a later batch, before any settle. The gap
    closes the first journey at its deadline, as a catch-up after the batch that moved the
    clock would have (and a re-score does): the event must not be the one to fire it, or the
    first journey's last row would carry the event's time as `updated_at` and version."""
    day = 24 * 60
    batches = [
        [touchpoint("k1", 0, journey_id=None, customer_id="c9")],
        [touchpoint("o1", 15 * day, journey_id="J5", customer_id="c5")],
        [touchpoint("k2", 16 * day, journey_id=None, customer_id="c9")],
    ]
    caught_up = final_state(batches, whole=True)
    first = min(caught_up["journeys"].values(), key=lambda row: row["started_at"])
    assert first["customer_id"] == "c9" and first["touchpoint_count"] == 1
    assert first["updated_at"] == T0 + timedelta(days=14, microseconds=1)
    assert final_state(batches, every=3, whole=True) == caught_up


def test_a_failed_catch_up_names_its_book_and_keeps_what_the_others_caused() -> None:
    p = processor()
    values = [promise("e1", 0, 4, "J1"), promise("f1", 1, 4, "J3"), promise("g1", 2, 4, "J4")]
    p.process(0, inbound(values), NOW, settle=False)
    p.process(0, inbound([touchpoint("x1", 60 * 5, journey_id="J2", customer_id="c2")],
                         start=3), NOW, settle=False)  # fmt: skip
    catch_up = p._catch_up

    def failing(partition: int, book: Any, *args: Any) -> None:
        if book.book_key.endswith("J3"):
            raise ValueError("a bug")
        catch_up(partition, book, *args)

    p._catch_up = failing  # type: ignore[method-assign,assignment]
    try:
        p.settle(0)
    except Exception as exc:
        failed = exc
    else:
        raise AssertionError("settle did not raise")
    assert type(failed).__name__ == "Unsettled"
    assert failed.key.endswith("J3") and failed.at.offset == 1  # type: ignore[attr-defined]
    assert isinstance(failed.__cause__, ValueError)
    kept = failed.output.rows["journey_signals"]  # type: ignore[attr-defined]
    assert [s["journey_id"] for s in kept if s["signal"] == "promise_broken"] == ["J1"]
    p._catch_up = catch_up  # type: ignore[method-assign]
    rest = p.settle(0)  # the books after the failed one are still left
    broken = [s["journey_id"] for s in rest.rows["journey_signals"]
              if s["signal"] == "promise_broken"]  # fmt: skip
    assert broken == ["J4"]


def simulated_month(every: int | None) -> dict[str, Any]:
    """A simulated month (with its late, re-sent and malformed events, and idle ticks
    walking the clock) in slices of 50 per partition, each book caught up after every slice
    (`every` None) or left to a settle every `every` slices: the final journeys (whole rows
    but their provenance), active signals and the alerts raised."""
    deliveries, _ = simulate(SimulationConfig(customers=150, seed=5, start=T0))
    place, partitions = partitioner(2), 2
    per_partition: dict[int, list[Inbound]] = {}
    tick = to_us(T0)
    for offset, delivery in enumerate(deliveries):
        partition = place(delivery.key.decode())
        per_partition.setdefault(partition, []).append(
            Inbound("touchpoints", partition, offset, delivery.value)
        )
        if offset % 301 == 0:
            tick += 6 * 3600 * 10**6
            for other in range(partitions):
                per_partition.setdefault(other, []).append(
                    Inbound("touchpoints", other, offset, None, 0.0, tick)
                )
    p = processor(partitions, {}, books_kept=100)
    journeys: dict[str, Any] = {}
    signals: dict[str, int] = {}
    alerts: set[str] = set()
    for partition, events in sorted(per_partition.items()):
        slices = [events[i : i + 50] for i in range(0, len(events), 50)]
        for index, batch in enumerate(slices):
            outs = [p.process(partition, batch, NOW, settle=every is None)]
            if every is not None and ((index + 1) % every == 0 or index == len(slices) - 1):
                outs.append(p.settle(partition))
            for out in outs:
                journeys |= {r["journey_id"]: _clocked(r) for r in out.rows.get("journeys", [])}
                signals |= {r["signal_id"]: r["active"]
                            for r in out.rows.get("journey_signals", [])}  # fmt: skip
                alerts |= {orjson.loads(body)["alert_id"] for _, body in out.alerts}
    journeys = {k: v for k, v in journeys.items() if not v.get("is_deleted")}
    return {"journeys": journeys, "signals": {k for k, v in signals.items() if v},
            "alerts": alerts}  # fmt: skip


def test_a_simulated_month_settled_per_checkpoint_ends_as_caught_up_per_slice() -> None:
    """Journeys and signals end the same. So do the alerts, but for one kind: a promise due
    soon is alerted at a catch-up while it is open, so one made and kept (or broken) between
    two settles is not alerted as due soon; the fewer catch-ups, the more such promises
    (here a settle spans days of event time; live, a checkpoint spans half a second or so).
    None is alerted that was not due soon."""
    every_slice = simulated_month(None)
    assert len(every_slice["journeys"]) > 100 and every_slice["signals"]
    kinds = {alert.split(":")[0] for alert in every_slice["alerts"]}
    assert {"promise_broken", "promise_due_soon", "journey_turned_poor"} <= kinds
    for every in (3, 8, 10**6):
        deferred = simulated_month(every)
        assert deferred["journeys"] == every_slice["journeys"]
        assert deferred["signals"] == every_slice["signals"]
        due_soon = {a for a in every_slice["alerts"] if a.startswith("promise_due_soon:")}
        assert deferred["alerts"] - due_soon == every_slice["alerts"] - due_soon
        assert {a for a in deferred["alerts"] if a.startswith("promise_due_soon:")} <= due_soon
