"""`journeys rescore`: the stored touchpoints scored again with another score model.

The journeys, signals and scores of every stored touchpoint are recomputed by the live
worker's engine and row builders (`pipeline.journey`, `pipeline.stream.rows`) and stored
under the model's version, beside the live rows (migration 0007). `books` is the pure part
(one book's touchpoints in, its rows out); `run` reads ClickHouse by shard, scores the
shards in parallel and keeps the progress ledger that makes a rerun resume.
"""

from pipeline.rescore.books import Book, BookRows, score_book, score_events, stored_row
from pipeline.rescore.run import RescoreError, RescorePlan, rescore

__all__ = [
    "Book",
    "BookRows",
    "RescoreError",
    "RescorePlan",
    "rescore",
    "score_book",
    "score_events",
    "stored_row",
]
