"""`journeys erase`: forget customers everywhere the pipeline keeps them (issue 22).

Two paths, one erasure function (`pipeline.store.erase.Eraser`):
* a worker runs (its consumer group has members): the request goes to the erasures topic
  and the worker erases in its own process (in embedded mode it owns chdb), between two
  checkpoints, then drops the customers' journey books and de-dup ids; this command waits
  for its reply (JOURNEYS_ERASURE_WAIT_SECONDS) and prints the counts.
* no worker runs (or Kafka cannot be reached): this command opens the store itself and
  erases there; the worker drops the customers' books when it next starts, from the ledger.
"""

from __future__ import annotations

import getpass
import time

from pipeline.cli.common import click, errors_as_exit, fail, out, say, settings_or_exit
from pipeline.settings import Settings
from pipeline.store import StoreError, apply_migrations, get_store
from pipeline.store.erase import Eraser, load_ledger
from pipeline.store.erasure import (
    REPLY_PREFIX,
    ErasureError,
    ErasureOutcome,
    ErasureRequest,
    check_customer_ids,
    check_reason,
    check_salt,
    decode_reply,
    describe,
    new_request_id,
)


@click.command()
@click.option(
    "--customer", "customers", multiple=True, metavar="ID",
    help="A customer id exactly as the events carry it; repeat for several.",
)  # fmt: skip
@click.option(
    "--reason",
    default="",
    metavar="TEXT",
    help="Why (a ticket or request reference), kept in the erasure ledger.",
)
@click.option(
    "--direct", is_flag=True,
    help="Erase in this process even if a worker seems to run (only with the worker stopped "
    "in embedded mode: chdb allows one process per data directory).",
)  # fmt: skip
def erase(customers: tuple[str, ...], reason: str, direct: bool) -> None:
    """Erase customers: their touchpoints, journeys, signals, dead letters and aggregates.

    Every ClickHouse table loses the customers' rows, the aggregates over them are
    recomputed for the days they touched, the worker forgets their journeys, and the
    erasure ledger records a salted hash of each id (never the id), when, the reason and the
    rows removed per table. Replays of the topics drop their events from then on. Erasing
    again is harmless and says so; an unknown id erases nothing ("0 rows").
    """
    settings = settings_or_exit()
    with errors_as_exit(ErasureError):
        ids = check_customer_ids(customers)
        reason = check_reason(reason)
        salt = check_salt(
            settings.erasure_salt.get_secret_value() if settings.erasure_salt else None
        )
    request = ErasureRequest(new_request_id(), tuple(ids), reason, _who())
    worker = not direct and _worker_running(settings)
    with errors_as_exit(ErasureError, StoreError):
        if worker:
            say(f"worker group {settings.worker_id} is running: sending the request to "
                f"{settings.topic_erasures}")  # fmt: skip
            outcomes = _through_worker(settings, request)
        else:
            outcomes = _directly(settings, request, salt)
    for outcome in outcomes:
        out.print(describe(outcome))
    total = sum(o.rows_removed for o in outcomes)
    out.print(f"erased {len(outcomes)} customer(s): {total:,} rows removed; ledger request "
              f"{request.request_id}")  # fmt: skip


def _who() -> str:
    try:
        return f"journeys erase ({getpass.getuser()})"
    except (KeyError, OSError):
        return "journeys erase"


def _directly(settings: Settings, request: ErasureRequest, salt: str) -> list[ErasureOutcome]:
    store = get_store(settings)
    try:
        apply_migrations(store, say=say)  # the ledger table (0009) may be new
        eraser = Eraser(store, say=say)
        outcomes = eraser.erase(request.customer_ids, salt, load_ledger(store, salt))
        eraser.record(outcomes, request.reason, request.request_id, request.requested_by)
        return outcomes
    finally:
        store.close()


def _worker_running(settings: Settings) -> bool:
    """Whether the worker's consumer group has members; False when Kafka does not answer
    (then no worker can be consuming either)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            request_timeout_ms=int(max(settings.kafka_connect_timeout_seconds, 5) * 1000),
            **settings.kafka_client_options(),
        )
    except KafkaError as exc:
        say(f"Kafka at {settings.bootstrap_servers} does not answer ({exc}): no worker runs")
        return False
    try:
        groups = admin.describe_groups([settings.worker_id])
        # kafka-python 3 answers {group_id: {..., "members": [...]}}; 2.x a list of tuples.
        found = groups.values() if isinstance(groups, dict) else groups
        return any(_members(group) for group in found)
    except KafkaError as exc:
        say(f"cannot tell whether worker group {settings.worker_id} runs ({exc})")
        return False
    finally:
        admin.close()


def _through_worker(settings: Settings, request: ErasureRequest) -> list[ErasureOutcome]:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    options = settings.kafka_client_options()
    topic = TopicPartition(settings.topic_erasures, 0)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, **options)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                             **options)  # fmt: skip
    try:
        consumer.assign([topic])
        consumer.seek_to_end(topic)
        consumer.position(topic)  # resolved now: the reply comes after this offset
        producer.send(topic.topic, request.encode(), key=request.request_id.encode(),
                      partition=0).get(timeout=30)  # fmt: skip
        wanted = REPLY_PREFIX + request.request_id.encode()
        deadline = time.monotonic() + settings.erasure_wait_seconds
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key == wanted:
                        return decode_reply(request, record.value)
    finally:
        consumer.close()
        producer.close()
    fail(
        f"the worker did not report erasure request {request.request_id} within "
        f"{settings.erasure_wait_seconds:g} s (JOURNEYS_ERASURE_WAIT_SECONDS): it stays on "
        f"{settings.topic_erasures} and is done when the worker reads it; check the worker's "
        "log, and the ledger (erasures table, request_id) afterwards"
    )


def _members(group: object) -> bool:
    members = group.get("members") if isinstance(group, dict) else getattr(group, "members", ())
    return bool(members)
