"""The rows a worker would store for a list of messages, computed in this process.

No Kafka, Faust or ClickHouse: the messages go through the worker's own core
(`JourneyProcessor`, configured from the settings as the worker's is: the contract's
validator, de-duplication, the journey engine, the event-time clock that steps each
journey through its deadlines one at a time, and the row builders of `rows`), in batches
as the worker takes them, on one partition, so nothing is re-keyed. A last idle tick moves
the clock to `until`, as the worker's tick does for a caught-up partition, so every
deadline due by then has fired. The rows are the worker's, version for version, the
`is_deleted` rows of journeys a late event merged into another included; only their
number differs, since the worker writes each journey's last state once per checkpoint and
this once per batch (a table read with FINAL shows the same either way).

What reads the tables (the report, the dashboards) is tested on these rows, filled from a
simulated company's messages (`pipeline.simulate`), which also lets anyone preview what a
simulation will show.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from pipeline.journey import ScoreModel
from pipeline.journey.events import to_us
from pipeline.settings import Settings, load_settings
from pipeline.store import Store
from pipeline.stream.book_cache import BookCache
from pipeline.stream.metrics import Metrics
from pipeline.stream.processor import Inbound, JourneyProcessor
from pipeline.stream.rows import Row

Tables = dict[str, list[Row]]  # table -> its rows, in the order the worker writes them


def offline_rows(
    messages: Iterable[tuple[bytes, datetime]],
    until: datetime,
    model: ScoreModel | None = None,
    settings: Settings | None = None,
    batch: int = 500,
) -> Tables:
    """The rows for `messages`, each a value and the time the worker takes it in (a batch
    is taken, and stamped `_ingested_at`, at the time of its last message), then for the
    clock reaching `until`. `model` None: the settings' score model."""
    settings = settings or load_settings()
    processor = JourneyProcessor.from_settings(
        settings, BookCache(lambda key: None), lambda key: 0, Metrics(), model
    )
    tables: Tables = {}
    offset = 0
    for taken in _batches(messages, batch):
        inbound = [
            Inbound(settings.topic_touchpoints, 0, offset + n, value)
            for n, (value, _) in enumerate(taken)
        ]
        offset += len(taken)
        _extend(tables, processor.process(0, inbound, taken[-1][1]).rows)
    tick = Inbound(settings.topic_routed, 0, 0, b"", tick_us=to_us(until))
    _extend(tables, processor.process(0, [tick], until).rows)
    return tables


def write_rows(store: Store, tables: Tables) -> None:
    """Insert each table's rows, in one insert per table."""
    for table, rows in tables.items():
        store.insert(table, rows)


def _batches(
    messages: Iterable[tuple[bytes, datetime]], size: int
) -> Iterator[list[tuple[bytes, datetime]]]:
    taken: list[tuple[bytes, datetime]] = []
    for message in messages:
        taken.append(message)
        if len(taken) == size:
            yield taken
            taken = []
    if taken:
        yield taken


def _extend(tables: Tables, rows: Tables) -> None:
    for table, written in rows.items():
        tables.setdefault(table, []).extend(written)
