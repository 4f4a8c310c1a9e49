"""The HTTP collector (`journeys collect`): touchpoints over HTTP into Kafka, for department
systems that cannot run a Kafka client; the same contract and rejections as the worker.

Pure parts (`auth`, `limits`, `batch`, `dead_letters`, `openapi`) are unit-tested without
I/O; `publish` (aiokafka) and `app` (aiohttp) are the edges. Imports downwards only:
contract and settings; nothing but the CLI imports this package.
"""

from pipeline.collect.app import Collector, Limits
from pipeline.collect.exceptions import CollectorError, KafkaUnavailable, TokenConfigError
from pipeline.collect.server import build_collector, serve

__all__ = [
    "Collector",
    "CollectorError",
    "KafkaUnavailable",
    "Limits",
    "TokenConfigError",
    "build_collector",
    "serve",
]
