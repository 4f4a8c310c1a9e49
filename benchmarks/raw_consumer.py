"""The ceiling: a raw aiokafka consumer that only decodes each event (orjson), nothing else.

Faust runs on aiokafka, so no Faust worker can go faster than this on the same machine.
Run in its own process: `python -m benchmarks.raw_consumer BOOTSTRAP TOPIC PARTITIONS COUNT
TIMEOUT [READY_FILE]`;
prints one JSON object: per-batch arrival times (for the sustained rate) and, for events
stamped with their send time, the latency from send to decode.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.events import SENT_AT, decoded


async def consume(
    bootstrap: str,
    topic: str,
    partitions: int,
    count: int,
    timeout: float,
    ready: Path | None = None,
) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        # No group: every partition from its first offset (auto_offset_reset), uncommitted.
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        if ready is not None:
            ready.write_text("ready")
        return await _drain(consumer, count, timeout)
    finally:
        await consumer.stop()


async def _drain(consumer: AIOKafkaConsumer, count: int, timeout: float) -> dict[str, Any]:
    done, stamps, latencies = 0, [], []
    deadline = time.monotonic() + timeout
    while done < count and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
        for records in batches.values():
            for record in records:
                event = decoded(record.value)
                sent = event["attributes"].get(SENT_AT) if event and "attributes" in event else None
                if sent is not None:
                    latencies.append(time.time() - sent)
            done += len(records)
            # One timestamp per batch stands for each of its events: per-event clocks would
            # cost more than the decode being measured.
            stamps.extend([time.time()] * len(records))
    return {"decoded": done, "stored_at": stamps, "latencies": latencies}


def main(argv: list[str]) -> None:
    bootstrap, topic, partitions = argv[0], argv[1], int(argv[2])
    count, timeout = int(argv[3]), float(argv[4])
    ready = Path(argv[5]) if len(argv) > 5 else None
    result = asyncio.run(consume(bootstrap, topic, partitions, count, timeout, ready))
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
