"""Dead letters fit the dead-letter topic whatever the payload's size.

A message just under the broker's size limit is a valid Kafka message; its dead letter adds
the reason in headers and no longer fits: the broker refused the batch, the checkpoint
failed and the worker stopped, again at every restart. Its topic copy is now cut to fit,
with the whole payload's size and sha256 in headers; the dead_letters row keeps it whole.
The size is what the broker checks: one record batch, as the producer encodes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from tests.support.runtime_rig import TOPIC, RuntimeRig, record

LIMIT = 1_048_576  # the runtime's default max_message_bytes, Kafka's default max.request.size


def encoded_size(message: Any) -> int:
    """Bytes of the record batch the producer sends for this message alone."""
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 31)
    builder.append(0, timestamp=None, key=message.key, value=message.value,
                   headers=list(message.headers))  # fmt: skip
    return len(builder.build())


def dead_letters(rig: RuntimeRig) -> list[Any]:
    return [m for b in rig.runtime.sink._batches.values() for m in b.messages
            if m.topic == "touchpoints.dlq"]  # fmt: skip


def test_a_dead_letter_too_large_for_the_topic_is_cut_to_fit_and_names_the_whole(
    runtime_factory: Callable[..., RuntimeRig],
) -> None:
    rig = runtime_factory()
    huge = b'{"department": "billing", "note": "' + b"x" * (LIMIT - 200) + b'"}'  # fits Kafka
    small = b'{"department": "billing"}'
    rig.deliver([record(TOPIC, 0, 0, huge), record(TOPIC, 0, 1, small)])
    cut, whole = dead_letters(rig)
    headers = dict(cut.headers)
    assert headers["raw_truncated"] == b"1" and headers["raw_size"] == str(len(huge)).encode()
    assert headers["raw_sha256"] == hashlib.sha256(huge).hexdigest().encode()
    assert huge.startswith(cut.value) and len(cut.value) > LIMIT - 4096
    assert encoded_size(cut) <= LIMIT
    assert whole.value == small and dict(whole.headers)["raw_truncated"] == b"0"
    rows = {row["source_offset"]: row for row in rig.buffered("dead_letters")}
    assert rows[0]["raw"] == huge.decode() and rows[0]["raw_size"] == len(huge)
    assert rows[0]["raw_sha256"] == headers["raw_sha256"].decode()
    assert rig.metrics.counts["received"] == 2 == rig.metrics.counts["rejected"]
