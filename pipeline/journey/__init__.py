"""The journey engine: whole-journey experience scores with every point attributed.

Pure Python (no Faust, Kafka or ClickHouse import) so the stream worker, replay and the
tests run the same code. The concepts are in docs/concepts.md; the rules are in
docs/score-model.md.

How the stream uses it::

    model = load_score_model()                      # or load_score_model(Path("v2.toml"))
    book = JourneyBook.from_bytes(raw) if raw else JourneyBook.for_touchpoint(tp)
    changes = add(book, tp, model)                  # tp: pipeline.contract.Touchpoint
    # changes.assignment -> touchpoints row (journey_id assigned, stage resolved)
    # changes.scores     -> journeys rows / journeys.scores messages (JourneyScore)
    # changes.appeared   -> journey_signals rows (active=1); changes.retracted -> active=0
    # changes.turned_poor, promises_due(book, now, horizon_seconds) -> journeys.alerts
    # changes.retired / changes.moved -> journeys superseded, touchpoints moved by a late event
    table[book_key(tp)] = book.to_bytes()             # not tp.key: see book.book_key
    # event-time clock: when the partition's clock passes next_deadline(book, model):
    changes = advance(book, now, model)             # fires promise_broken, ... exactly once

State per book key (`book_key(tp)`): a book keyed by journey_id holds that one
journey; a book keyed by customer_id holds the customer's journeys without journey_id,
split by the inactivity gap and `journey_closed`, with ids derived from their first event
(`segments.derive_journey_id`), so identity is stable under replay and arrival order.

Every result is a function of the book's event set, the score model and the event-time
clock: the same events in any order, with duplicates, advanced in any steps, give the
same signals and scores (within the retention; past the per-journey cap a journey is
scored on its first events). A book met with another model version is re-scored whole.
`score_model_v1.toml` holds the defaults; `word_of_mouth` gives the period balance
3 x good - 18 x poor; `department_points` the per-department attribution of a score.

The modules, each importing only those before it: `types` (what the engine hands out),
`model` (the score model file), `events` (the compact event kept in state), `rules` (rule
groups, their keys, and the rules without a deadline), `obligations` (the rules with one),
`state` (one journey: its events, groups, deadlines), `scoring` (a journey's score),
`segments` (a customer's events split into journeys), `book` (the state of one key, and
what the stream reads from it), `assembly` (`add` and `advance`: all that changes a book).
"""

from pipeline.journey.assembly import add, advance
from pipeline.journey.book import (
    JourneyBook,
    book_key,
    next_deadline,
    promises_due,
    routing_key,
)
from pipeline.journey.model import (
    DEFAULT_MODEL_PATH,
    ScoreModel,
    load_score_model,
    parse_score_model,
)
from pipeline.journey.scoring import department_points, word_of_mouth
from pipeline.journey.segments import derive_journey_id
from pipeline.journey.types import (
    Assignment,
    Changes,
    JourneyScore,
    PromiseDue,
    ScoreModelError,
    Signal,
)

__all__ = [
    "DEFAULT_MODEL_PATH",
    "Assignment",
    "Changes",
    "JourneyBook",
    "JourneyScore",
    "PromiseDue",
    "ScoreModel",
    "ScoreModelError",
    "Signal",
    "add",
    "advance",
    "book_key",
    "department_points",
    "derive_journey_id",
    "load_score_model",
    "next_deadline",
    "parse_score_model",
    "promises_due",
    "routing_key",
    "word_of_mouth",
]
