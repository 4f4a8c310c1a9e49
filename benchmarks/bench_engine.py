"""Cost per incoming event of updating a journey and re-scoring it (issue #4, "Speed").

For journeys of 5, 50 and 500 events (a realistic multi-department service case keyed by
its case number), it reports:

- `grow`: the mean cost per event of `add` while a journey grows from 0 to N events
  (update + re-score + change list, state in memory);
- `memory`: the cost of adding the N-th event to a journey holding N-1, the book in memory
  (the worker keeps the books it works on decoded between flushes): the headline figure;
- `decoded`: the same on a book just decoded from bytes (no in-memory caches yet);
- `table`: decode + add + encode, as if the state were read from and written to a
  RocksDB-backed table for every event;
- `bytes`: the encoded size of the book;
- the baseline, measured in the same run: decoding one touchpoint from JSON with msgspec,
  the cheapest step any worker must take per event, so figures from different machines
  can be compared as ratios.

Times are CPU time of this process (the machine is shared), best of three runs.
Run: `.venv/bin/python -m benchmarks.bench_engine` (about a minute).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec

from pipeline.contract import Touchpoint
from pipeline.journey import JourneyBook, add, load_score_model

MODEL = load_score_model()
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
# One round of a service case: the front desk takes it, maintenance visits, billing bills.
ROUND: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("contact", "customer_service", {"wait_seconds": 200, "resolved": False}),
    ("handoff", "customer_service", {"to_department": "maintenance", "context_transferred": True}),
    ("case_opened", "maintenance", {"case_id": "C-{n}"}),
    ("promise_made", "maintenance", {"promise_id": "P-{n}", "due_at": "{due}",
                                     "description": "technician visit"}),
    ("appointment_scheduled", "maintenance", {"appointment_id": "A-{n}"}),
    ("proactive_update", "maintenance", {"about": "technician on the way"}),
    ("promise_kept", "maintenance", {"promise_id": "P-{n}"}),
    ("rework", "maintenance", {"reason": "repeat repair"}),
    ("case_resolved", "maintenance", {"case_id": "C-{n}"}),
    ("invoice_issued", "billing", {"invoice_id": "I-{n}", "amount": 120}),
    ("contact", "billing", {"wait_seconds": 30, "resolved": True}),
    ("survey_response", "customer_service", {"csat": 4, "nps": 8}),
)  # fmt: skip


def journey(size: int, case: str = "case-1") -> list[Touchpoint]:
    """`size` touchpoints of one case, an hour apart, cycling through ROUND."""
    found = []
    for index in range(size):
        kind, department, template = ROUND[index % len(ROUND)]
        when = START + timedelta(hours=index)
        due = (when + timedelta(hours=30)).isoformat()
        attributes = {
            k: v.format(n=index // len(ROUND), due=due) if isinstance(v, str) else v
            for k, v in template.items()
        }
        found.append(Touchpoint(
            event_id=f"{case}-{index:04d}", occurred_at=when, customer_id="cust-1",
            department=department, type=kind, journey_id=case, channel="phone",
            attributes=attributes,
        ))  # fmt: skip
    return found


def best_of(repeats: int, run: Callable[[], float]) -> float:
    """The fastest of several runs: the least disturbed by other work on the machine."""
    return min(run() for _ in range(repeats))


def grow(size: int, journeys: int) -> float:
    cases = [journey(size, f"case-{j}") for j in range(journeys)]
    start = time.process_time()
    for touchpoints in cases:
        book = JourneyBook.for_touchpoint(touchpoints[0])
        for tp in touchpoints:
            add(book, tp, MODEL)
    return (time.process_time() - start) / (size * journeys)


def nth(size: int, rounds: int, mode: str) -> float:
    """The N-th event of `rounds` journeys of N events, the books prepared per `mode`.

    `memory`: books built by `add` and kept in memory (the worker's book cache);
    `decoded`: books just decoded from bytes; `table`: decode + add + encode timed together.
    """
    cases = [journey(size, f"case-{j}") for j in range(rounds)]
    books = []
    for touchpoints in cases:
        book = JourneyBook.for_touchpoint(touchpoints[0])
        for tp in touchpoints[:-1]:
            add(book, tp, MODEL)
        books.append(book)
    stored = [book.to_bytes() for book in books]
    if mode == "decoded":
        books = [JourneyBook.from_bytes(raw) for raw in stored]
    # the books are long-lived: keep the collector from re-scanning them while timing
    gc.collect()
    gc.freeze()
    start = time.process_time()
    if mode == "table":
        for raw, touchpoints in zip(stored, cases, strict=True):
            book = JourneyBook.from_bytes(raw)
            add(book, touchpoints[-1], MODEL)
            book.to_bytes()
    else:
        for book, touchpoints in zip(books, cases, strict=True):
            add(book, touchpoints[-1], MODEL)
    elapsed = time.process_time() - start
    gc.unfreeze()
    return elapsed / rounds


def baseline(rounds: int) -> float:
    raw = msgspec.json.encode(journey(2)[1])
    decoder = msgspec.json.Decoder(Touchpoint)
    start = time.process_time()
    for _ in range(rounds):
        decoder.decode(raw)
    return (time.process_time() - start) / rounds


def main() -> None:
    base = best_of(5, lambda: baseline(20_000))
    print(f"baseline: msgspec JSON decode of one touchpoint = {base * 1e6:.2f} us (CPU time)")
    print(f"{'events':>6} {'grow':>7} {'memory':>7} {'decoded':>8} {'table':>7} "
          f"{'bytes':>7} {'memory/baseline':>16}   (us per event)")  # fmt: skip
    for size in (5, 50, 500):
        rounds = max(12, 6000 // size)
        per_event = best_of(3, lambda size=size: grow(size, max(1, 2000 // size)))
        figures = [
            best_of(3, lambda size=size, mode=mode, rounds=rounds: nth(size, rounds, mode))
            for mode in ("memory", "decoded", "table")
        ]
        tps = journey(size)
        book = JourneyBook.for_touchpoint(tps[0])
        for tp in tps:
            add(book, tp, MODEL)
        memory, decoded, table = (f * 1e6 for f in figures)
        print(
            f"{size:>6} {per_event * 1e6:>7.1f} {memory:>7.1f} {decoded:>8.1f} {table:>7.1f} "
            f"{len(book.to_bytes()):>7} {figures[0] / base:>16.1f}"
        )


if __name__ == "__main__":
    main()
