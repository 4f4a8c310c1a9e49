"""py-spy samples of the worker become shares per activity that add up to the whole."""

from __future__ import annotations

import pytest

from benchmarks.flame import OTHER, breakdown

FOLDED = """\
thread (1): MainThread;run (asyncio);EpollSelector.select (selectors.py:468) 40
thread (1): MainThread;run;Runtime.handle;JourneyProcessor.process (processor.py:96);add 30
thread (1): MainThread;run;Sender._send_produce_req (sender.py:288) 20
thread (1): MainThread;run;StateTable.persist;Sender.x 5
thread (1): MainThread;run;Handle._run (events.py:80) 5
thread (1): MainThread;run;Checkpoint.commit;Outbox.send;Sender.x 10
thread (1): MainThread;run;Checkpoint.commit;PartitionBatch.seal;Latest.build 8
thread (1): MainThread;run;Checkpoint.commit;commit_offsets;Consumer._commit_offsets 4
thread (1): MainThread;run;Checkpoint.commit;BookCache.evict_clean 3
thread (7): asyncio_0;_worker;Connection.query (chdb) 99
not a sample line
"""


def test_shares_per_activity_of_the_main_thread() -> None:
    shares = breakdown(FOLDED)
    assert shares == pytest.approx({
        "idle: waiting in epoll": 40 / 125,
        "processor: validate, route, de-dup, score, build rows": 30 / 125,
        "aiokafka producer: batching and produce requests": 20 / 125,
        "sending a checkpoint's messages in whole batches (Outbox)": 10 / 125,
        "checkpoint: journey rows and score messages, once per checkpoint "
        "(PartitionBatch.seal)": 8 / 125,
        "state table writes and their changelog (StateTable.persist)": 5 / 125,
        "offset commits": 4 / 125,  # not every frame named commit: the checkpoint is one
        "checkpoint: the rest of its work on the event loop (Checkpoint.commit)": 3 / 125,
        OTHER: 5 / 125,
    })  # fmt: skip
    assert sum(shares.values()) == pytest.approx(1.0)


def test_another_thread_and_no_samples() -> None:
    assert breakdown(FOLDED, thread="asyncio_0") == {OTHER: 1.0}
    assert breakdown("") == {}
